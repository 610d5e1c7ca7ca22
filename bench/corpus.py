"""A deterministic corpus of news feeds for the benchmarks, with a manifest of the truth.

`python bench/corpus.py --feeds 200 --entries 50 --out bench/.work/corpus`
writes feeds/NNNN.xml (RSS 2.0 and Atom 1.0 alternating) and manifest.json.

Why generated and not downloaded: the benchmark must be repeatable offline
and every run must see the same bytes. The text is built from news-like
sentence templates per topic, so topic rules, full-text search, related
posts and near-duplicate detection have real work to do:

* every entry has a 150-400-word body in 3-8 paragraphs, 1-3 categories,
  an author and a date (fixed in the past, so nothing is clamped);
* about 15% of entries are syndicated near-copies of a story first published
  by another feed (new link and guid, a reworded title, ~15% of the
  sentences rewritten);
* about 5% are exact repeats of another feed's entry (wire copy carried
  verbatim: same guid, link, title, body and date);
* the manifest lists every entry with its kind and the story it copies.

Same seed, same sizes -> the same bytes, byte for byte.
"""

from __future__ import annotations

import argparse
import json
import random
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

BASE_DATE = datetime(2025, 3, 1, 12, 0, tzinfo=timezone.utc)
NEAR_SHARE = 0.15
EXACT_SHARE = 0.05
DEFAULT_SEED = 9

# --- vocabulary: per topic, what the stories are about ---

TOPICS: dict[str, dict[str, list[str]]] = {
    "middle-east": {
        "categories": ["Middle East", "World"],
        "subjects": ["the Iraqi government", "Israeli negotiators", "Iranian officials", "the Lebanese army",
                     "aid agencies in Gaza", "Syrian rebels", "Yemen's Houthi movement", "Jordanian mediators"],
        "places": ["Baghdad", "Gaza", "Tehran", "Beirut", "Damascus", "Sanaa", "Amman", "Jerusalem"],
        "objects": ["a ceasefire proposal", "the prisoner exchange", "humanitarian corridors",
                    "border crossings", "the reconstruction plan", "talks on oil exports"],
        "quotes": ["We are closer than we have been in months", "The situation on the ground remains fragile",
                   "Civilians are paying the highest price", "No agreement is final until it is signed"],
    },
    "europe": {
        "categories": ["Europe", "EU"],
        "subjects": ["the European Commission", "German ministers", "the French president",
                     "Polish farmers", "Greek port authorities", "EU finance ministers", "the European Parliament"],
        "places": ["Brussels", "Berlin", "Paris", "Warsaw", "Athens", "Strasbourg", "Zürich", "Lisbon"],
        "objects": ["the budget rules", "a new migration pact", "farm subsidies", "the energy market reform",
                    "rail links across the continent", "the enlargement talks"],
        "quotes": ["Europe has to speak with one voice", "This is a compromise nobody loves",
                   "Our farmers cannot wait another season", "The rules must apply to everyone"],
    },
    "technology": {
        "categories": ["Technology", "AI"],
        "subjects": ["a leading chipmaker", "the startup", "software developers", "security researchers",
                     "the data centre operator", "regulators", "an artificial intelligence lab"],
        "places": ["San Francisco", "Taipei", "Seoul", "Bangalore", "Dublin", "Helsinki", "Austin"],
        "objects": ["a new semiconductor plant", "its artificial intelligence model", "a cyberattack",
                    "the open-source release", "a software update", "cloud computing capacity"],
        "quotes": ["Demand for computing is outstripping supply", "Users' data was never at risk",
                   "This changes how software is written", "We take security extremely seriously"],
    },
    "climate": {
        "categories": ["Climate", "Environment"],
        "subjects": ["climate scientists", "firefighters", "the national weather service",
                     "renewable energy developers", "environmental groups", "coastal communities"],
        "places": ["Queensland", "California", "Andalusia", "Sindh", "Alberta", "the Sahel", "São Paulo"],
        "objects": ["record emissions", "a severe heatwave", "the wildfire season", "a prolonged drought",
                    "offshore wind farms", "carbon capture targets"],
        "quotes": ["We have never seen temperatures like this", "The science is unambiguous",
                   "Every fraction of a degree matters", "Adaptation is no longer optional"],
    },
    "economy": {
        "categories": ["Economy", "Business"],
        "subjects": ["the central bank", "economists", "retailers", "the finance ministry", "exporters",
                     "bond investors", "small businesses"],
        "places": ["Frankfurt", "Tokyo", "London", "New York", "Singapore", "Mumbai", "Toronto"],
        "objects": ["interest rates", "inflation", "new tariffs", "GDP growth", "the recession risk",
                    "the trade deficit", "consumer spending"],
        "quotes": ["Inflation is proving stickier than expected", "We are not in a recession yet",
                   "Markets had priced this in", "Households are feeling the squeeze"],
    },
    "sport": {
        "categories": ["Sport"],
        "subjects": ["the national football team", "the coach", "Olympic organisers", "the tennis champion",
                     "league officials", "the cycling team"],
        "places": ["Madrid", "Manchester", "Melbourne", "Rio de Janeiro", "Milan", "Doha"],
        "objects": ["the title race", "a transfer record", "the qualifying round", "the doping inquiry",
                    "ticket prices", "the new stadium"],
        "quotes": ["We played with heart tonight", "The fans deserve better",
                   "It was the best match of my career", "We will come back stronger"],
    },
    "health": {
        "categories": ["Health"],
        "subjects": ["hospital managers", "the health ministry", "researchers", "nurses' unions",
                     "the World Health Organization", "vaccine makers"],
        "places": ["Geneva", "Nairobi", "Lagos", "Manila", "Chicago", "Copenhagen"],
        "objects": ["waiting lists", "a measles outbreak", "the new vaccine", "drug prices",
                    "mental health services", "antibiotic resistance"],
        "quotes": ["Staff are stretched to breaking point", "The trial results are encouraging",
                   "Prevention is cheaper than cure", "Patients must come first"],
    },
    "science": {
        "categories": ["Science"],
        "subjects": ["astronomers", "the space agency", "marine biologists", "physicists",
                     "archaeologists", "a university team"],
        "places": ["Chile", "Cape Canaveral", "the Great Barrier Reef", "CERN", "Svalbard", "Kyoto"],
        "objects": ["a distant exoplanet", "the lunar lander", "coral bleaching", "a new particle measurement",
                    "ancient burial sites", "the gene-editing trial"],
        "quotes": ["This discovery rewrites the textbooks", "We need more data before drawing conclusions",
                   "It is a once-in-a-generation finding", "The instrument performed flawlessly"],
    },
}
TOPIC_NAMES = sorted(TOPICS)

DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
ACTIONS = ["approve", "reject", "review", "delay", "expand", "suspend", "finalise", "challenge", "support"]
PAST = ["approved", "rejected", "reviewed", "delayed", "expanded", "suspended", "criticised", "backed"]
HEADLINE_VERBS = ["weigh", "back", "reject", "delay", "push for", "warn over", "clash over", "agree on"]
SPEAKERS = ["a senior official", "a spokesperson", "the minister", "an analyst", "a diplomat",
            "a local resident", "the chief executive", "a union leader"]
SOURCE_REFS = ["official figures", "a report published this week", "people familiar with the matter",
               "government data", "an independent study", "local media"]
TIMEFRAMES = ["by the end of the year", "within weeks", "next month", "before the summer",
              "over the next decade", "as soon as possible"]
TRENDS = ["rise", "fall", "stabilise", "double", "slow"]
CONNECTORS = ["Meanwhile,", "However,", "In addition,", "Separately,", "At the same time,", "Earlier,"]
FIRST_NAMES = ["Anna", "Omar", "Li", "Sofia", "James", "Amara", "Lukas", "Priya", "Mateo", "Yuki",
               "Fatima", "Jonas", "Elena", "Kwame", "Chloé", "Dmitri"]
LAST_NAMES = ["Keller", "Haddad", "Wang", "Rossi", "O'Connor", "Okafor", "Novak", "Sharma", "García",
              "Tanaka", "Nasser", "Berg", "Popescu", "Mensah", "Dubois", "Ivanova"]
SITE_PREFIXES = ["Harbor", "Northfield", "Riverside", "Capital", "Coastal", "Metro", "Valley", "Summit",
                 "Lakeside", "Eastern", "Western", "Highland", "Union", "Civic", "Daily", "Global"]
SITE_SUFFIXES = ["Times", "Courier", "Herald", "Gazette", "Post", "Observer", "Chronicle", "Tribune",
                 "Ledger", "Monitor", "Dispatch", "Review", "Record", "Sentinel"]

SENTENCES = [
    "{Subject} said on {day} that it would {action} {object} {timeframe}.",
    "The decision follows weeks of pressure in {place}, where {subject} {past} {object}.",
    "“{quote},” {speaker} told reporters in {place}.",
    "According to {source_ref}, {object} has been under discussion since {year}.",
    "Analysts expect the cost of {object} to {trend} by {percent} percent {timeframe}.",
    "{Connector} {subject} in {place} {past} the plan, citing concerns about {object}.",
    "Critics argue that {object} does little to address the problems facing {place}.",
    "{Number} people attended a meeting in {place} on {day} to discuss {object}.",
    "Officials in {place} declined to comment on {object} when contacted by {site}.",
    "{Subject} is expected to {action} {object} at a summit in {place} {timeframe}.",
    "Supporters say {object} could benefit millions, while opponents warn of delays and rising costs.",
    "It was not immediately clear how {subject} would respond to the latest figures on {object}.",
]
TITLES = [
    "{Subject} {hverb} {object}",
    "{Place}: {subject} {hverb} {object}",
    "{Subject} {hverb} {object} as pressure mounts in {place}",
    "Why {subject} could {action} {object} {timeframe}",
    "{Object} in focus as {subject} meet in {place}",
]


@dataclass
class Entry:
    guid: str
    link: str
    title: str
    author: str
    categories: list[str]
    published: datetime
    paragraphs: list[str]
    topic: str
    kind: str = "original"  # original | near | exact
    story: str = ""  # the guid of the original this copies (itself for originals)

    @property
    def words(self) -> int:
        return sum(len(p.split()) for p in self.paragraphs)

    @property
    def html(self) -> str:
        return "".join(f"<p>{escape(p)}</p>" for p in self.paragraphs)

    @property
    def summary(self) -> str:
        return self.paragraphs[0]


@dataclass
class Feed:
    index: int
    title: str
    site_url: str
    format: str  # rss | atom
    entries: list[Entry] = field(default_factory=list)

    @property
    def path(self) -> str:
        return f"/feeds/{self.index:04d}.xml"

    @property
    def content_type(self) -> str:
        return "application/rss+xml" if self.format == "rss" else "application/atom+xml"


@dataclass
class Corpus:
    seed: int
    feeds: list[Feed]

    def entries(self) -> list[Entry]:
        return [e for f in self.feeds for e in f.entries]


# --- text ---


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def _fill(rng: random.Random, template: str, vocab: dict[str, list[str]], site: str) -> str:
    values = {
        "subject": rng.choice(vocab["subjects"]), "place": rng.choice(vocab["places"]),
        "object": rng.choice(vocab["objects"]), "quote": rng.choice(vocab["quotes"]),
        "day": rng.choice(DAYS), "action": rng.choice(ACTIONS), "past": rng.choice(PAST),
        "hverb": rng.choice(HEADLINE_VERBS), "speaker": rng.choice(SPEAKERS),
        "source_ref": rng.choice(SOURCE_REFS), "timeframe": rng.choice(TIMEFRAMES),
        "trend": rng.choice(TRENDS), "number": str(rng.randint(2, 4000)), "percent": str(rng.randint(1, 40)), "year": str(rng.randint(2015, 2024)),
        "connector": rng.choice(CONNECTORS), "site": site,
    }
    values.update({k.capitalize(): _cap(v) for k, v in list(values.items())})
    return template.format(**values)


def sentence(rng: random.Random, topic: str, site: str = "this newspaper") -> str:
    return _fill(rng, rng.choice(SENTENCES), TOPICS[topic], site)


def headline(rng: random.Random, topic: str) -> str:
    return _cap(_fill(rng, rng.choice(TITLES), TOPICS[topic], ""))


def body(rng: random.Random, topic: str, site: str, low: int = 150, high: int = 400) -> list[str]:
    """Paragraphs of 2-4 sentences until the drawn word count (150-400) is reached."""
    target = rng.randint(low + 10, high - 30)  # the last sentence may overshoot by ~25 words
    paragraphs: list[str] = []
    words = 0
    while words < target:
        sentences: list[str] = []
        for _ in range(rng.randint(2, 4)):
            sentences.append(sentence(rng, topic, site))
            words += len(sentences[-1].split())
            if words >= target:
                break
        paragraphs.append(" ".join(sentences))
    return paragraphs


def person(rng: random.Random) -> str:
    return f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}"


def site_names(count: int) -> list[str]:
    names = []
    for i in range(count):
        name = f"{SITE_PREFIXES[i % len(SITE_PREFIXES)]} {SITE_SUFFIXES[(i // len(SITE_PREFIXES)) % len(SITE_SUFFIXES)]}"
        cycle = i // (len(SITE_PREFIXES) * len(SITE_SUFFIXES))
        names.append(name if cycle == 0 else f"{name} {cycle + 1}")
    return names


# --- topics for configs that run on the corpus ---


def topic_specs(count: int) -> list[tuple[str, str, list[str], list[str]]]:
    """(slug, title, keywords, categories): the 8 subject topics, then one topic per place."""
    specs = []
    for name in TOPIC_NAMES:
        vocab = TOPICS[name]
        keywords = sorted({_strip_article(o) for o in vocab["objects"]} | {p.lower() for p in vocab["places"]})
        specs.append((name, name.replace("-", " ").title(), keywords, vocab["categories"][:1]))
    for name in TOPIC_NAMES:
        for place in TOPICS[name]["places"]:
            slug = "local-" + "-".join(_ascii(place).lower().replace("'", "").split())
            specs.append((slug, place, [place.lower()], []))
    if count > len(specs):
        raise ValueError(f"the corpus vocabulary gives at most {len(specs)} topics, not {count}")
    return specs[:count]


def _strip_article(phrase: str) -> str:
    for prefix in ("a ", "an ", "the ", "its ", "new "):
        phrase = phrase.removeprefix(prefix)
    return phrase


def _ascii(text: str) -> str:
    import unicodedata

    return "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))


# --- the corpus ---


def generate(feeds: int, entries: int, seed: int = DEFAULT_SEED) -> Corpus:
    """Originals first, then near-copies and exact repeats of other feeds' originals."""
    rng = random.Random(seed)
    names = site_names(feeds)
    corpus = Corpus(seed, [
        Feed(i + 1, names[i], f"https://news{i + 1:04d}.example/", "rss" if i % 2 == 0 else "atom")
        for i in range(feeds)
    ])
    slots = [(f, n) for f in range(feeds) for n in range(entries)]
    kinds = _kinds(rng, len(slots), feeds > 1)
    originals: list[tuple[int, Entry]] = []
    pending: list[tuple[int, int, str]] = []
    for (f, n), kind in zip(slots, kinds):
        if kind == "original":
            entry = _original(rng, corpus.feeds[f], n)
            corpus.feeds[f].entries.append(entry)
            originals.append((f, entry))
        else:
            pending.append((f, n, kind))
    for f, n, kind in pending:
        source_feed, original = rng.choice(originals)
        while source_feed == f:
            source_feed, original = rng.choice(originals)
        copy = _exact(original) if kind == "exact" else _near(rng, original, corpus.feeds[f], n)
        corpus.feeds[f].entries.append(copy)
    for feed in corpus.feeds:
        feed.entries.sort(key=lambda e: (e.published, e.guid), reverse=True)
    return corpus


def _kinds(rng: random.Random, total: int, copies_possible: bool) -> list[str]:
    if not copies_possible:
        return ["original"] * total
    near, exact = round(total * NEAR_SHARE), round(total * EXACT_SHARE)
    kinds = ["near"] * near + ["exact"] * exact + ["original"] * (total - near - exact)
    rng.shuffle(kinds)
    return kinds


def _original(rng: random.Random, feed: Feed, n: int) -> Entry:
    topic = rng.choice(TOPIC_NAMES)
    categories = list(TOPICS[topic]["categories"][: rng.randint(1, 2)])
    if rng.random() < 0.3:
        categories.append(rng.choice(["Politics", "Analysis", "Live", "Opinion"]))
    title = headline(rng, topic)
    slug = "-".join(title.lower().replace(":", "").replace("’", "").split()[:6])
    link = f"{feed.site_url}{2025}/{feed.index:04d}-{n:03d}-{slug}"
    return Entry(
        guid=f"{feed.site_url}story/{feed.index:04d}-{n:03d}", link=link, title=title,
        author=person(rng), categories=categories,
        published=BASE_DATE - timedelta(minutes=rng.randint(0, 60 * 24 * 30)),
        paragraphs=body(rng, topic, feed.title), topic=topic, story=f"{feed.site_url}story/{feed.index:04d}-{n:03d}",
    )


def _exact(original: Entry) -> Entry:
    return Entry(**{**asdict(original), "kind": "exact", "story": original.guid,
                    "categories": list(original.categories), "paragraphs": list(original.paragraphs)})


def _near(rng: random.Random, original: Entry, feed: Feed, n: int) -> Entry:
    """The same story carried by another site: reworded title, ~15% of sentences rewritten."""
    paragraphs = []
    for paragraph in original.paragraphs:
        sentences = paragraph.split(". ")
        for i in range(len(sentences)):
            if rng.random() < 0.15:
                sentences[i] = sentence(rng, original.topic, feed.title).rstrip(".")
        paragraphs.append(". ".join(sentences))
    title = rng.choice(["{t}", "UPDATE: {t}", "{t} - report", "{t}, sources say", "Analysis: {t}"])
    guid = f"{feed.site_url}story/{feed.index:04d}-{n:03d}"
    return Entry(
        guid=guid, link=f"{feed.site_url}syndicated/{feed.index:04d}-{n:03d}",
        title=title.format(t=original.title), author=rng.choice([original.author, "Staff and agencies"]),
        categories=list(original.categories), published=original.published + timedelta(minutes=rng.randint(5, 600)),
        paragraphs=paragraphs, topic=original.topic, kind="near", story=original.guid,
    )


# --- XML ---


def render(feed: Feed) -> bytes:
    return (render_rss(feed) if feed.format == "rss" else render_atom(feed)).encode("utf-8")


def render_rss(feed: Feed) -> str:
    items = []
    for e in feed.entries:
        cats = "".join(f"<category>{escape(c)}</category>" for c in e.categories)
        items.append(
            f"<item><title>{escape(e.title)}</title><link>{escape(e.link)}</link>"
            f"<guid isPermaLink=\"false\">{escape(e.guid)}</guid>"
            f"<pubDate>{format_datetime(e.published)}</pubDate>"
            f"<dc:creator>{escape(e.author)}</dc:creator>{cats}"
            f"<description>{escape(e.summary)}</description>"
            f"<content:encoded><![CDATA[{e.html}]]></content:encoded></item>\n")
    updated = max((e.published for e in feed.entries), default=BASE_DATE)
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n'
        '<rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/" '
        'xmlns:dc="http://purl.org/dc/elements/1.1/"><channel>\n'
        f"<title>{escape(feed.title)}</title><link>{escape(feed.site_url)}</link>"
        f"<description>News from {escape(feed.title)}</description><language>en</language>"
        f"<lastBuildDate>{format_datetime(updated)}</lastBuildDate>\n"
        + "".join(items) + "</channel></rss>\n"
    )


def render_atom(feed: Feed) -> str:
    entries = []
    for e in feed.entries:
        cats = "".join(f"<category term={quoteattr(c)}/>" for c in e.categories)
        stamp = e.published.isoformat()
        entries.append(
            f"<entry><title>{escape(e.title)}</title><link rel=\"alternate\" href={quoteattr(e.link)}/>"
            f"<id>{escape(e.guid)}</id><published>{stamp}</published><updated>{stamp}</updated>"
            f"<author><name>{escape(e.author)}</name></author>{cats}"
            f"<summary>{escape(e.summary)}</summary>"
            f"<content type=\"html\">{escape(e.html)}</content></entry>\n")
    updated = max((e.published for e in feed.entries), default=BASE_DATE)
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n<feed xmlns="http://www.w3.org/2005/Atom">\n'
        f"<title>{escape(feed.title)}</title><id>{escape(feed.site_url)}</id>"
        f"<link rel=\"alternate\" href={quoteattr(feed.site_url)}/>"
        f"<updated>{updated.isoformat()}</updated>\n" + "".join(entries) + "</feed>\n"
    )


def manifest(corpus: Corpus) -> dict:
    entries = corpus.entries()
    counts = {k: sum(1 for e in entries if e.kind == k) for k in ("original", "near", "exact")}
    return {
        "seed": corpus.seed,
        "feeds": len(corpus.feeds),
        "entries": len(entries),
        "kinds": counts,
        "stories": counts["original"],
        "words": sum(e.words for e in entries),
        "topics": {t: TOPICS[t]["categories"] for t in TOPIC_NAMES},
        "feed_list": [
            {"path": f.path, "title": f.title, "format": f.format, "site_url": f.site_url,
             "entries": [{"guid": e.guid, "link": e.link, "title": e.title, "kind": e.kind, "story": e.story,
                          "topic": e.topic, "words": e.words, "published": e.published.isoformat()}
                         for e in f.entries]}
            for f in corpus.feeds
        ],
    }


def write_corpus(corpus: Corpus, out: Path) -> dict[str, bytes]:
    """Write feeds/NNNN.xml and manifest.json under out; return path -> bytes as served."""
    (out / "feeds").mkdir(parents=True, exist_ok=True)
    files = {feed.path: render(feed) for feed in corpus.feeds}
    for path, data in files.items():
        (out / path.lstrip("/")).write_bytes(data)
    (out / "manifest.json").write_text(json.dumps(manifest(corpus), indent=1, ensure_ascii=False), "utf-8")
    return files


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--feeds", type=int, default=200)
    parser.add_argument("--entries", type=int, default=50)
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / ".work" / "corpus")
    args = parser.parse_args()
    corpus = generate(args.feeds, args.entries, args.seed)
    files = write_corpus(corpus, args.out)
    info = manifest(corpus)
    print(f"{args.out}: {len(files)} feeds, {info['entries']} entries ({info['kinds']}), "
          f"{info['words']} words, {sum(len(b) for b in files.values()) / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
