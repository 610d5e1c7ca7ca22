"""Write eval/related_articles.jsonl: the labelled set for related posts.

Deterministic (a seeded random.Random) and written by us from the subjects
in eval/related_subjects.py: 327 articles in 16 subjects of 4 to 40
articles each, a third of them trap articles that lean on another subject's word in their own sense. Every
article is a distinct story (no copies: duplicates have eval/articles.jsonl),
labelled with its one `subject` and, for a trap article, its `trap` word.

    .venv/bin/python eval/related_generate.py     # rewrites eval/related_articles.jsonl
"""

from __future__ import annotations

import json
import random
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from related_subjects import BRIDGES, FRAMES, GENERIC, SHARED_PEOPLE, SHARED_PLACES, SUBJECTS  # noqa: E402

SEED = 24
# Articles per subject, uneven as in a real store: a list for an article of a thin subject
# (tennis, space) has few right links to show, and filling it up shows wrong ones.
SIZES = {"middle-east": 40, "football": 36, "central-banks": 32, "rail": 30, "semiconductors": 28,
         "elections": 26, "wildfires-heat": 24, "courts": 22, "renewables": 20, "farming": 16, "batteries": 14,
         "medical-research": 12, "cyber": 10, "vaccination": 8, "tennis": 5, "space": 4}
OUT = Path(__file__).with_name("related_articles.jsonl")
START = datetime(2024, 6, 3, 6, 0, tzinfo=timezone.utc)
DAYS = 60
SITES = [("Harbour Times", "harbourtimes.example"), ("Meridian Post", "meridianpost.example"),
         ("Baltic Review", "balticreview.example"), ("Cedar Coast News", "cedarcoast.example"),
         ("Atlas Wire", "atlaswire.example"), ("Sunrise Gazette", "sunrisegazette.example"),
         ("Northgate Herald", "northgate.example")]
WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
MONTHS = ["January", "February", "March", "April", "May", "June", "July", "September", "October", "November"]


def fill(rng: random.Random, template: str, facts: dict[str, str]) -> str:
    """A template with its slots filled: people and place from the story, numbers fresh each time."""
    text = template.format(n=rng.randint(2, 19), big=rng.randint(12, 950), pct=rng.randint(3, 88),
                           dec=f"{rng.randint(1, 9)}.{rng.randint(0, 9)}",
                           w=rng.choice(facts["words"]), d=rng.choice(WEEKDAYS), m=rng.choice(MONTHS),
                           **{k: v for k, v in facts.items() if k != "words"})
    return text[0].upper() + text[1:]


def story(rng: random.Random, subject: str, trap: str) -> dict:
    """One article: a title, a lead, then paragraphs mixing a few of the subject's own sentences,
    subject words in generic frames, generic news sentences, a passing mention of another
    subject and, for a trap article, the trap's sentences."""
    spec = SUBJECTS[subject]
    # Half the people and places come from pools every subject shares, as in real news.
    p, q = (rng.choice(spec["people"] if rng.random() < 0.5 else SHARED_PEOPLE) for _ in range(2))
    place = rng.choice(spec["places"] if rng.random() < 0.5 else SHARED_PLACES)
    facts = {"p": p, "q": q, "pl": place, "o": rng.choice(spec["orgs"]),
             "words": spec["words"]}
    titles, trap_sentences = spec["traps"][trap] if trap else (spec["titles"], [])
    title = fill(rng, rng.choice(titles), facts)
    # A trap article says less about its subject: the trap word carries more of its weight.
    own = rng.sample(spec["sentences"], rng.randint(1, 2) if trap else rng.randint(2, 3))
    frames = rng.randint(1, 3) if trap else rng.randint(4, 7)
    body = [*own[1:], *(fill(rng, f, facts) for f in rng.sample(FRAMES, frames)),
            *rng.sample(GENERIC, rng.randint(8, 12)), *rng.sample(BRIDGES[subject], rng.randint(0, 2)),
            *trap_sentences]
    body = [fill(rng, s, facts) if "{" in s else s for s in body]
    rng.shuffle(body)
    sentences = [fill(rng, own[0], facts), *body]
    paragraphs, i = [], 0
    while i < len(sentences):
        size = rng.choice([1, 2, 2, 3])
        paragraphs.append(" ".join(sentences[i:i + size]))
        i += size
    site, domain = rng.choice(SITES)
    published = START + timedelta(minutes=rng.randint(0, DAYS * 24 * 60))
    return {"subject": subject, "trap": trap, "site": site, "source": site, "title": title,
            "text": "\n\n".join(paragraphs), "categories": rng.choice(spec["categories"]),
            "published": published.isoformat(), "domain": domain}


def build() -> list[dict]:
    rng = random.Random(SEED)
    made = []
    for subject, size in SIZES.items():
        count = max(1, round(size / 3))  # a third of each subject's articles are traps
        traps = [word for _ in range(count) for word in SUBJECTS[subject]["traps"]][:count]
        kinds = sorted(traps) + [""] * (size - count)
        made += [story(rng, subject, trap) for trap in kinds]
    rng.shuffle(made)
    for number, article in enumerate(made):
        article["id"] = f"r{number:04d}"
        article["url"] = f"https://{article.pop('domain')}/news/{article['id']}"
    return made


def main() -> None:
    articles = build()
    with OUT.open("w", encoding="utf-8") as out:
        for article in articles:
            out.write(json.dumps(article, ensure_ascii=False, sort_keys=True) + "\n")
    print(f"{OUT}: {len(articles)} articles in {len({a['subject'] for a in articles})} subjects, "
          f"{sum(1 for a in articles if a['trap'])} traps")


if __name__ == "__main__":
    main()
