"""Write eval/articles.jsonl: a labeled, deterministic set for dedup and topic quality.

Written by us from templates (no third-party text). Each *story* is one news
event; it is published by 1-5 sites as copies with a rewritten headline, a
reworded intro, swapped or trimmed paragraphs and the site's boilerplate,
sometimes under the same URL with tracking parameters. Hard negatives are
other events on the same subject (same places, same phrasing habits) and
follow-ups that reuse two background paragraphs of the original story.

Labels per article: `cluster` (the story) and `topics` (what a careful
editor would tag, given the rules in eval/topics.toml).

    python eval/generate.py            # rewrites eval/articles.jsonl
"""

from __future__ import annotations

import json
import random
from datetime import datetime, timedelta, timezone
from pathlib import Path

SEED = 6
OUT = Path(__file__).with_name("articles.jsonl")

SITES = [
    ("Harbour Times", "harbourtimes.example", "Follow the Harbour Times on Google News"),
    ("Meridian Post", "meridianpost.example", "Sign up for the Meridian Post morning briefing."),
    ("Baltic Review", "balticreview.example", "Reporting by staff; editing by the Baltic Review desk."),
    ("Cedar Coast News", "cedarcoast.example", "Read more stories like this at Cedar Coast News."),
    ("Atlas Wire", "atlaswire.example", "(c) Atlas Wire. All rights reserved. Republication prohibited."),
    ("Sunrise Gazette", "sunrisegazette.example", "Have a tip? Write to the Sunrise Gazette newsroom."),
    ("Northgate Herald", "northgate.example", "Follow the Northgate Herald on social media for updates."),
]

PEOPLE = ["Amira Haddad", "Jonas Weber", "Lucía Fernández", "Tomasz Nowak", "Chen Wei", "Sofia Rossi",
          "Omar Khalil", "Ingrid Larsen", "Rahul Mehta", "Élodie Martin", "Kwame Mensah", "Yuki Tanaka",
          "Dimitris Papadopoulos", "Fatima Zahra", "Hannah Schmidt", "Mateo Silva", "Nadia Petrova"]

SUBJECTS = {
    "middle-east": {
        "topics": ["middle-east"], "categories": ["Middle East", "World"],
        "places": ["Baghdad", "Gaza", "Beirut", "Sanaa", "Damascus", "Basra", "Tehran", "Mosul", "Aden"],
        "countries": ["Iraq", "Syria", "Lebanon", "Yemen", "Iran", "Israel"],
        "things": ["ceasefire", "aid convoy", "border crossing", "prisoner exchange", "drone strike",
                   "reconstruction fund", "water pipeline", "refugee camp", "peace talks"],
        "titles": ["{country}'s {thing} talks stall in {place}", "Envoys meet in {place} over {thing}",
                   "{place}: {thing} deal within reach, officials say", "Hopes rise for {thing} near {place}",
                   "{person} warns {thing} in {place} could collapse", "New push on {thing} as {country} weighs offer"],
    },
    "europe": {
        "topics": ["europe"], "categories": ["Europe", "EU"],
        "places": ["Brussels", "Warsaw", "Athens", "Lyon", "Hamburg", "Strasbourg", "Lisbon", "Kraków"],
        "countries": ["France", "Germany", "Poland", "Greece", "the European Union"],
        "things": ["budget rules", "farm subsidies", "rail strike", "migration pact", "energy levy",
                   "fishing quota", "border checks", "pension reform", "housing plan"],
        "titles": ["{country} lawmakers back {thing} after long night in {place}",
                   "{place} summit reaches deal on {thing}", "{person} defends {thing} before {place} vote",
                   "Deal on {thing} divides {country}", "{thing} vote set for {place} next week",
                   "European Commission unveils {thing} in {place}"],
    },
    "technology": {
        "topics": ["technology"], "categories": ["Technology", "Business"],
        "places": ["Dublin", "Eindhoven", "Bangalore", "Austin", "Taipei", "Tallinn", "Seoul"],
        "countries": ["the chipmaker", "the startup", "the software group", "the cloud provider"],
        "things": ["artificial intelligence model", "semiconductor plant", "data centre", "cyberattack",
                   "software update", "chip export licence", "quantum computer", "satellite network"],
        "titles": ["{country} unveils {thing} in {place}", "{place} {thing} hit by delays",
                   "{person} says {thing} will ship this year", "Inside the race to build a {thing} in {place}",
                   "Investors cheer {thing} plans from {country}", "Regulators probe {thing} near {place}"],
    },
    "climate": {
        "topics": ["climate"], "categories": ["Climate", "Environment"],
        "places": ["Valencia", "Queensland", "Sicily", "Alberta", "Punjab", "Crete", "the Sahel"],
        "countries": ["emergency services", "the regional government", "climate scientists", "farmers"],
        "things": ["heatwave", "wildfire", "drought", "flood defence", "carbon market", "renewable auction",
                   "emissions target", "coral die-off"],
        "titles": ["{thing} grips {place} as {country} issue warning", "{place} braces for record {thing}",
                   "{person} links {place} {thing} to warming", "Costs of {thing} in {place} climb",
                   "{country} call for help as {thing} spreads in {place}", "What the {place} {thing} means"],
    },
    "economy": {
        "topics": ["economy"], "categories": ["Economy", "Business"],
        "places": ["Frankfurt", "London", "Tokyo", "Ottawa", "Canberra", "Zurich", "Stockholm"],
        "countries": ["the central bank", "the finance ministry", "the statistics office", "the treasury"],
        "things": ["inflation", "interest rates", "tariffs", "GDP growth", "bond yields", "wage growth",
                   "housing prices", "recession risk"],
        "titles": ["{country} in {place} surprises markets on {thing}", "{thing} figures jolt {place}",
                   "{person} says {thing} will ease", "{place}: {thing} outlook darkens",
                   "Markets weigh {thing} as {country} holds course", "Why {thing} matters for {place} savers"],
    },
    "sport": {
        "topics": [], "categories": ["Sport"],
        "places": ["Baghdad", "Doha", "Madrid", "Manchester", "Milan", "Riyadh"],
        "countries": ["Iraq's football team", "the club", "the national side", "the league"],
        "things": ["cup final", "transfer window", "football qualifier", "title race", "coaching change"],
        "titles": ["{country} eyes {thing} glory in {place}", "{person} shines as {thing} heats up",
                   "{place} hosts {thing} amid fan frenzy", "Late drama in {place} {thing}"],
    },
}

SENTENCES = [
    "{person}, who has followed the {thing} for years, said the next {n} days would be decisive.",
    "Officials in {place} said {n} people had been affected so far, a figure expected to rise.",
    "The {thing} has been discussed since {month}, when {country} first raised the idea.",
    "According to a document seen by reporters, the plan would cost about {n} million euros.",
    "{person} told a press conference in {place} that talks on the {thing} were \u201cconstructive\u201d.",
    "Critics argue the {thing} does little for residents of {place}, many of whom feel ignored.",
    "A spokesperson for {country} declined to comment on the details of the {thing}.",
    "Analysts noted that a similar effort collapsed in {month} after {n} weeks of negotiation.",
    "Local media in {place} reported long queues and growing frustration on {weekday}.",
    "The announcement came hours after {person} met counterparts from {country}.",
    "{country} said it would publish a full assessment of the {thing} by {month}.",
    "Residents interviewed in {place} said they were cautiously hopeful but had heard promises before.",
    "The figures released on {weekday} showed a change of {n} percent compared with last year.",
    "{person} warned that without more funding the {thing} could stall within {n} months.",
    "Opposition figures accused {country} of rushing the {thing} for political gain.",
    "Observers say the outcome in {place} will shape how the {thing} is handled elsewhere.",
    "An independent panel chaired by {person} is due to report on the {thing} in {month}.",
    "Engineers and officials worked through the night in {place} to meet the {weekday} deadline.",
    "The {thing} was first proposed by {person}, then a junior adviser, more than {n} years ago.",
    "Markets reacted calmly, with traders in {place} saying the {thing} was largely expected.",
]
INTROS = [
    "{place} \u2014 {country} on {weekday} moved ahead with the {thing}, a step {person} called overdue.",
    "In a move closely watched in {place}, {country} on {weekday} pressed on with the {thing}.",
    "The {thing} took a decisive turn on {weekday} in {place}, where {person} announced the next phase.",
]
MONTHS = ["January", "February", "March", "April", "May", "June", "July", "September", "October"]
WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"]


def event(rng: random.Random, subject: str) -> dict:
    spec = SUBJECTS[subject]
    return {"subject": subject, "place": rng.choice(spec["places"]), "country": rng.choice(spec["countries"]),
            "thing": rng.choice(spec["things"]), "person": rng.choice(PEOPLE),
            "month": rng.choice(MONTHS), "weekday": rng.choice(WEEKDAYS)}


def fill(rng: random.Random, template: str, facts: dict) -> str:
    text = template.format(n=rng.randint(2, 950), **facts)
    return text[0].upper() + text[1:]


def paragraphs(rng: random.Random, facts: dict, count: int) -> list[str]:
    chosen = rng.sample(SENTENCES, count * 2)
    return [fill(rng, chosen[2 * i], facts) + " " + fill(rng, chosen[2 * i + 1], facts) for i in range(count)]


def copy_of(rng: random.Random, story: dict, site: tuple, index: int) -> dict:
    """One site's version: headline rewritten, intro reworded, paragraphs swapped/trimmed, boilerplate."""
    facts, body = story["facts"], list(story["body"])
    title = story["title"] if index == 0 else fill(rng, rng.choice(SUBJECTS[facts["subject"]]["titles"]), facts)
    if index > 0:
        kind = rng.random()
        if kind < 0.35:
            body[0] = fill(rng, rng.choice(INTROS), facts)
        if 0.2 < kind < 0.7 and len(body) > 4:
            i, j = rng.sample(range(1, len(body)), 2)
            body[i], body[j] = body[j], body[i]
        if kind > 0.5:
            body = body[: len(body) - rng.randint(1, 2)]
    body.append(site[2])
    slug = "-".join(story["title"].lower().split()[:5]).replace("'", "").replace(":", "")
    url = f"https://{site[1]}/news/{story['key']}-{slug}"
    if index > 0 and rng.random() < 0.1:  # the same URL seen twice, with tracking or AMP
        url = f"https://{story['sites'][0][1]}/news/{story['key']}-{slug}/amp?utm_source=feed"
    published = story["published"] + timedelta(minutes=17 * index + rng.randint(0, 15))
    return {"site": site[0], "source": site[0], "url": url, "title": title, "text": "\n\n".join(body),
            "published": published.isoformat(), "categories": SUBJECTS[facts["subject"]]["categories"],
            "cluster": story["key"], "topics": SUBJECTS[facts["subject"]]["topics"], "kind": "copy"}


def stories(rng: random.Random, count: int) -> list[dict]:
    start = datetime(2024, 3, 1, 6, 0, tzinfo=timezone.utc)
    made = []
    for number in range(count):
        subject = list(SUBJECTS)[number % len(SUBJECTS)]
        facts = event(rng, subject)
        story = {"key": f"s{number:03d}", "facts": facts,
                 "title": fill(rng, rng.choice(SUBJECTS[subject]["titles"]), facts),
                 "body": [fill(rng, rng.choice(INTROS), facts)] + paragraphs(rng, facts, rng.randint(5, 8)),
                 "published": start + timedelta(hours=7 * number),
                 "sites": rng.sample(SITES, rng.choice([1, 2, 3, 3, 4, 5]))}
        made.append(story)
    return made


def follow_up(rng: random.Random, story: dict, key: str) -> dict:
    """A later story on the same event: new lead and reporting, two background paragraphs reused."""
    facts = dict(story["facts"], person=rng.choice(PEOPLE), weekday=rng.choice(WEEKDAYS))
    new = [fill(rng, rng.choice(INTROS), facts)] + paragraphs(rng, facts, rng.randint(4, 6))
    body = new + story["body"][-2:]
    site = rng.choice(SITES)
    return {"site": site[0], "source": site[0], "url": f"https://{site[1]}/news/{key}-follow-up",
            "title": "Update: " + fill(rng, rng.choice(SUBJECTS[facts["subject"]]["titles"]), facts),
            "text": "\n\n".join(body + [site[2]]),
            "published": (story["published"] + timedelta(days=1)).isoformat(),
            "categories": SUBJECTS[facts["subject"]]["categories"], "cluster": key,
            "topics": SUBJECTS[facts["subject"]]["topics"], "kind": "follow-up"}


def build() -> list[dict]:
    rng = random.Random(SEED)
    made = stories(rng, 130)
    articles = [copy_of(rng, s, site, i) for s in made for i, site in enumerate(s["sites"])]
    articles += [follow_up(rng, s, f"f{n:03d}") for n, s in enumerate(made[:40])]
    for number, article in enumerate(articles):
        article["id"] = f"e{number:04d}"
    return articles


def main() -> None:
    articles = build()
    with OUT.open("w", encoding="utf-8") as out:
        for article in articles:
            out.write(json.dumps(article, ensure_ascii=False, sort_keys=True) + "\n")
    clusters = {a["cluster"] for a in articles}
    print(f"{OUT}: {len(articles)} articles in {len(clusters)} clusters")


if __name__ == "__main__":
    main()
