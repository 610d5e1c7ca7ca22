"""What is stored: articles, explain, topics. They open the database read-only and never write."""

from __future__ import annotations

import json

import click

import aggregator
from aggregator import publish
from aggregator.app.cli_support import EXIT_FAILED, EXIT_USAGE, Context, clip, fail, json_line, pass_context, terminal_safe
from aggregator.publish import names
from aggregator.storage.fulltext import SearchError


@click.command()
@click.option("--topic", metavar="SLUG", help="Only articles in this topic.")
@click.option("--search", metavar="QUERY", help="Full-text search in titles and text (FTS5 syntax: "
              'OR, NOT, "a phrase", prefix*, title:word).')
@click.option("--sort", type=click.Choice(["date", "relevance"]), default=None,
              help="Newest first (the default), or best match first (the default with --search).")
@click.option("--source", metavar="NAME", help="Only articles from this source.")
@click.option("--limit", type=click.IntRange(min=1), default=20, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@pass_context
def articles(ctx: Context, topic: str | None, search: str | None, sort: str | None, source: str | None,
             limit: int, as_json: bool) -> None:
    """List stored articles, newest first (with --search: best match first)."""
    config = ctx.config
    if topic and topic != "all" and topic not in {t.slug for t in config.topics}:
        raise click.BadParameter(f"no topic {topic!r}; see `aggregator topics`", param_hint="--topic")
    if sort == "relevance" and not search:
        raise click.BadParameter("relevance needs --search", param_hint="--sort")
    with ctx.store(read_only=True) as store:
        try:
            found = store.articles(topic=None if topic == "all" else topic, search=search,
                                   limit=limit, source=source, by_relevance=bool(search) and sort != "date")
        except SearchError as exc:
            fail(str(exc), EXIT_USAGE)
        duplicates = store.duplicate_ids([a.id for a in found]) if as_json else {}
        related_lists = publish.related.related_for_many(store, found, config.publish.related_posts) if as_json else {}
        for article in found:
            if not as_json:
                date = article.published.strftime("%Y-%m-%d %H:%M") if article.published else "-"
                topics = ",".join(article.topics) or "-"
                click.echo(f"{article.id}  {date}  {clip(article.site, 18):18}  {clip(topics, 24):24}  "
                           f"{terminal_safe(article.title)}")
                continue
            base = config.site.base_url
            related = related_lists[article.id]
            click.echo(json_line({
                "id": article.id, "title": article.title,
                "url": names.article_link(base, article.id, article.url),
                "site": article.site, "source": article.source,
                "categories": article.categories, "topics": article.topics,
                "published": article.published.isoformat() if article.published else None,
                "updated": article.updated.isoformat() if article.updated else None,
                "summary": article.summary, "text": article.text,
                "site_related": [{"title": r.title, "author": r.author} for r in article.site_related],
                "related": [{"id": r.id, "title": r.title, "url": names.article_link(base, r.id, r.url)}
                            for r in related],
                "cluster": article.cluster_id or article.id,
                "language": article.language or None,
                "duplicates": duplicates.get(article.id, []),
            }))


@click.command()
@click.argument("article_id")
@pass_context
def explain(ctx: Context, article_id: str) -> None:
    """Why an article is (or is not) in each topic, which copies it is clustered with, and why each
    related post is related."""
    with ctx.store(read_only=True) as store:
        article = store.get(article_id)
        if article is None:
            fail(f"no article {article_id!r}; see `aggregator articles`", EXIT_FAILED)
        copies = store.duplicate_ids([article.id])[article.id]
        links = publish.related.related_for_many(store, [article], ctx.config.publish.related_posts)[article.id]
        related_because = publish.related_explain.why(store, article, [link.id for link in links])
    click.echo(f"{article.id}  {terminal_safe(article.title)}")
    for match in aggregator.pipeline.topic_rules(ctx.config).explain(article):
        state = "match" if match.matched else "no"
        reasons = "; ".join(match.reasons) or "no rule matched"
        click.echo(f"  {match.slug:20} {state:5} score {match.score:g}: {terminal_safe(reasons)}")
    cluster = article.cluster_id or article.id
    role = "representative" if cluster == article.id else f"copy of {cluster}"
    click.echo(f"  cluster {cluster} ({role}); other copies: {', '.join(copies) or 'none'}")
    if not links:
        click.echo("  related posts: none similar enough")
    for link in links:
        click.echo(f"  related {link.id}  {terminal_safe(link.title)}")
        if link.id in related_because:
            click.echo(f"    {terminal_safe(related_because[link.id].summary())}")


@click.command()
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@pass_context
def topics(ctx: Context, as_json: bool) -> None:
    """Each topic with its article count and feed files."""
    config = ctx.config
    with ctx.store(read_only=True) as store:
        counts = store.topic_counts()
        total = store.count()
    for topic in [*config.topics, names.ALL_TOPIC]:
        count = total if topic is names.ALL_TOPIC else counts.get(topic.slug, 0)
        paths = [str(names.feed_path(config.storage.feeds_dir, topic.slug, f)) for f in config.publish.formats]
        urls = [names.feed_url(config.site.base_url, topic.slug, f) for f in config.publish.formats]
        if as_json:
            click.echo(json.dumps({"slug": topic.slug, "title": topic.title, "articles": count,
                                   "feeds": paths, "urls": urls}, ensure_ascii=False))
        else:
            click.echo(f"{topic.slug:20} {count:6d} articles  {topic.title}")
            for path in paths:
                click.echo(f"{'':20} {path}")
