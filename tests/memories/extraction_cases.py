"""A labelled set of user messages for the rule-based extractor, with the items each one should
give.

Each case is an utterance and its expected items as (kind, subject, op), optionally with the
expected text as a fourth element. Subjects follow the documented scheme
(memories.extraction.items.ExtractedItem); a subject ending in "*" matches any subject with that
prefix (pinned notes are keyed by a hash). Every message is read at NOW, a Tuesday, so relative
dates have one right answer. About a fifth of the cases are negatives: questions, small talk,
hypotheticals, requests, and statements about other people.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

NOW = datetime(2026, 3, 10, 14, 0, tzinfo=UTC)  # Tuesday 10 March 2026

Expected = tuple  # (kind, subject, op) or (kind, subject, op, text)


@dataclass(frozen=True)
class Case:
    text: str
    expected: tuple[Expected, ...] = ()
    attributes: dict | None = None  # expected attributes of the first item, when given


def case(text: str, *expected: Expected, attributes: dict | None = None) -> Case:
    return Case(text, tuple(expected), attributes)


CASES: tuple[Case, ...] = (
    # identity
    case("My name is Priya.", ("fact", "name", "add", "User's name is Priya")),
    case(
        "Hi there, I'm Tom and I live in Leeds.",
        ("fact", "name", "add", "User's name is Tom"),
        ("fact", "location", "add", "User lives in Leeds"),
    ),
    case("Please call me Liz.", ("fact", "preferred name", "add")),
    case("I'm Canadian, by the way.", ("fact", "nationality", "add", "User is Canadian")),
    case("I'm 29.", ("fact", "age", "add", "User is 29 years old")),
    case("I just turned 40 last week.", ("fact", "age", "add", "User is 40 years old")),
    case("My email is jo@example.com.", ("fact", "email", "add", "User's email is jo@example.com")),
    # where the user lives, and moves
    case(
        "I live in New York City with my wife.",
        ("fact", "location", "add", "User lives in New York City"),
    ),
    case(
        "We relocated to Austin, Texas in January.",
        ("fact", "location", "add", "User lives in Austin, Texas"),
    ),
    case("I moved from Paris to Berlin.", ("fact", "location", "add", "User lives in Berlin")),
    case("I moved to Berlin.", ("fact", "location", "add", "User lives in Berlin")),
    case("I'm based in Singapore.", ("fact", "location", "add", "User lives in Singapore")),
    case(
        "I don't live in London anymore.",
        ("fact", "location", "retract", "User no longer lives in London"),
    ),
    case("I grew up in Manila.", ("fact", "hometown", "add")),
    case("Originally I'm from Kraków.", ("fact", "hometown", "add", "User is from Kraków")),
    # work
    case(
        "I work as a nurse at St. Mary's Hospital.",
        ("fact", "occupation", "add", "User is a nurse"),
        ("fact", "employer", "add", "User works at St. Mary's Hospital"),
    ),
    case("I'm a data scientist.", ("fact", "occupation", "add", "User is a data scientist")),
    case("I'm a freelance photographer.", ("fact", "occupation", "add")),
    case("I work for the government.", ("fact", "employer", "add")),
    case(
        "I just started at Shopify last month.",
        ("fact", "employer", "add", "User works at Shopify"),
    ),
    case(
        "I'm a software engineer at Microsoft and I live in Seattle.",
        ("fact", "occupation", "add"),
        ("fact", "employer", "add", "User works at Microsoft"),
        ("fact", "location", "add", "User lives in Seattle"),
    ),
    case("I'm Dave, I work in marketing.", ("fact", "name", "add"), ("fact", "occupation", "add")),
    case("I quit my job last week.", ("fact", "employer", "retract")),
    case("I quit my job at Acme.", ("fact", "employer", "retract", "User no longer works at Acme")),
    case(
        "I'm no longer working at Deloitte.",
        ("fact", "employer", "retract", "User no longer works at Deloitte"),
    ),
    case("I used to work at IBM.", ("fact", "employer", "retract")),
    case(
        "I'm not a student anymore.",
        ("fact", "occupation", "retract", "User is no longer a student"),
    ),
    # diet and food
    case("I'm vegan.", ("preference", "diet", "add", "User is vegan")),
    case(
        "I've been vegetarian for ten years.", ("preference", "diet", "add", "User is vegetarian")
    ),
    case("I'm on a gluten-free diet.", ("preference", "diet", "add")),
    case(
        "I stopped being vegetarian last year.",
        ("preference", "diet", "retract", "User is no longer vegetarian"),
    ),
    case(
        "I'm not vegetarian any more.",
        ("preference", "diet", "retract", "User is no longer vegetarian"),
    ),
    case("I eat meat again.", ("preference", "diet", "retract")),
    case(
        "I don't eat pork or beef.",
        ("preference", "food:pork", "add"),
        ("preference", "food:beef", "add"),
    ),
    # allergies
    case(
        "I'm allergic to penicillin.",
        ("preference", "allergy:penicillin", "add", "User is allergic to penicillin"),
    ),
    case("I'm severely allergic to tree nuts.", ("preference", "allergy:tree nut", "add")),
    case("I'm no longer allergic to dust.", ("preference", "allergy:dust", "retract")),
    case("I have celiac disease.", ("preference", "intolerance:gluten", "add")),
    case(
        "I'm allergic to cats, so I can't visit my aunt.",
        ("preference", "allergy:cat", "add", "User is allergic to cats"),
    ),
    # likes and dislikes
    case("I love hiking in the mountains.", ("preference", "taste:hiking in mountains", "add")),
    case("I really enjoy cooking Thai food.", ("preference", "taste:cooking thai food", "add")),
    case(
        "I hate waking up early.",
        ("preference", "taste:waking up early", "add", "User hates waking up early"),
    ),
    case("I'm not a fan of horror movies.", ("preference", "taste:horror movies", "add")),
    case(
        "Jazz is my favorite genre.",
        ("preference", "favorite:genre", "add", "User's favorite genre is Jazz"),
    ),
    case(
        "I don't like olives anymore.",
        ("preference", "taste:olives", "retract", "User no longer likes olives"),
    ),
    case("I'm really into bouldering these days.", ("preference", "taste:bouldering", "add")),
    # family and other people
    case(
        "My brother Sam lives in Denver.",
        ("relationship", "person:sam:brother", "add", "User's brother is Sam"),
        (
            "relationship",
            "person:sam:brother:location",
            "add",
            "User's brother Sam lives in Denver",
        ),
    ),
    case(
        "My colleague Sam is a great designer.",
        ("relationship", "person:sam:colleague", "add", "User's colleague is Sam"),
        ("relationship", "person:sam:colleague:occupation", "add"),
    ),
    case(
        "Sam is my brother.", ("relationship", "person:sam:brother", "add", "User's brother is Sam")
    ),
    case("I have a daughter named Lily.", ("relationship", "person:lily:daughter", "add")),
    case(
        "My wife's name is Ana.", ("relationship", "person:ana:wife", "add", "User's wife is Ana")
    ),
    case(
        "My sister is vegan.",
        ("relationship", "person:sister:diet", "add", "User's sister is vegan"),
    ),
    case(
        "My boss Karen is allergic to cats.",
        ("relationship", "person:karen:boss", "add"),
        ("relationship", "person:karen:boss:allergy:cat", "add"),
    ),
    case(
        "My best friend Jake works at Amazon.",
        ("relationship", "person:jake:best friend", "add"),
        ("relationship", "person:jake:best friend:employer", "add"),
    ),
    case("My dad passed away last year.", ("relationship", "person:father", "add")),
    case("I have two cats.", ("relationship", "person:cat", "add", "User has two cats")),
    case(
        "I broke up with my girlfriend Mia.", ("relationship", "person:mia:girlfriend", "retract")
    ),
    case(
        "My partner Alex and I just adopted a puppy.",
        ("relationship", "person:alex:partner", "add", "User's partner is Alex"),
    ),
    case(
        "I'm married with two kids.",
        ("fact", "relationship status", "add", "User is married"),
        ("relationship", "person:child", "add"),
    ),
    # birthdays and dates
    case(
        "My birthday is on the 3rd of August.",
        ("fact", "birthday", "add", "User's birthday is August 3"),
        attributes={"month_day": "08-03", "date": "2026-08-03"},
    ),
    case(
        "I was born on July 4, 1988.",
        ("fact", "birthday", "add", "User's birthday is July 4, 1988"),
    ),
    case(
        "My mom's birthday is next Tuesday.",
        ("relationship", "person:mother:birthday", "add"),
        attributes={"date": "2026-03-17"},
    ),
    case(
        "Our anniversary is on May 5th.",
        ("event", "event:anniversary", "add"),
        attributes={"date": "2026-05-05"},
    ),
    case(
        "I got engaged last weekend!",
        ("fact", "relationship status", "add", "User is engaged"),
        ("event", "event:got engaged", "add"),
    ),
    # projects and deadlines
    case(
        "I'm working on a mobile app for dog walkers.",
        ("project", "project:mobile app for dog", "add"),
    ),
    case(
        "We're migrating our backend to Kubernetes.",
        ("project", "project:backend to kubernetes", "add"),
    ),
    case(
        "My side project is a recipe search engine.",
        ("project", "project:recipe search engine", "add"),
    ),
    case(
        "The API launch is due next Friday.",
        ("project", "project:api launch", "add", "The API launch is due on 2026-03-20"),
        attributes={"date": "2026-03-20"},
    ),
    case(
        "The deadline for my thesis is the end of the month.",
        ("project", "project:thesis", "add"),
        attributes={"date": "2026-03-31"},
    ),
    case(
        "We shipped the new checkout flow yesterday.", ("project", "project:checkout flow", "add")
    ),
    case(
        "I need to finish the slides by Thursday.",
        ("project", "project:slides", "add", "User needs to finish the slides by 2026-03-12"),
        attributes={"date": "2026-03-12"},
    ),
    case("I stopped working on the chess engine.", ("project", "project:chess engine", "retract")),
    case(
        "I'm writing a novel about time travel.",
        ("project", "project:novel about time travel", "add"),
    ),
    case(
        "The beta launches in two weeks.",
        ("project", "project:beta", "add"),
        attributes={"date": "2026-03-24"},
    ),
    # events
    case(
        "I have a job interview at Google on Monday.",
        ("event", "event:job interview", "add"),
        attributes={"date": "2026-03-16"},
    ),
    case(
        "My flight to Lisbon is tomorrow.",
        ("event", "event:flight to lisbon", "add"),
        attributes={"date": "2026-03-11"},
    ),
    case(
        "We're going to Rome in three weeks.",
        ("event", "event:going to rome", "add"),
        attributes={"date": "2026-03-31"},
    ),
    case(
        "I have a dentist appointment the day after tomorrow.",
        (
            "event",
            "event:dentist appointment",
            "add",
            "User has a dentist appointment on 2026-03-12",
        ),
    ),
    case(
        "I'm running a marathon on April 19th.",
        ("event", "event:running marathon", "add"),
        attributes={"date": "2026-04-19"},
    ),
    case(
        "I'm moving to Berlin in June.",
        ("event", "event:move", "add"),
        attributes={"date": "2026-06-01", "date_precision": "month"},
    ),
    case(
        "I have a presentation this Friday.",
        ("event", "event:presentation", "add"),
        attributes={"date": "2026-03-13"},
    ),
    # remember, forget, instructions, terms
    case(
        "Remember that my wife is allergic to shellfish.",
        ("relationship", "person:wife:allergy:shellfish", "add"),
    ),
    case("Please remember I prefer metric units.", ("instruction", "instruction:units", "add")),
    case("Keep in mind that I have a bad knee.", ("fact", "note:*", "add", "User has a bad knee")),
    case("Forget that I'm vegetarian.", ("preference", "diet", "forget", "User is vegetarian")),
    case("Forget that I live in Paris.", ("fact", "location", "forget", "User lives in Paris")),
    case("Please forget my phone number.", ("fact", "phone", "forget")),
    case("Forget where I work.", ("fact", "employer", "forget")),
    case("Forget about the API launch.", ("fact", "", "forget", "The API launch")),
    case(
        "Always reply in Spanish.",
        ("instruction", "instruction:language", "add", "Always reply in Spanish"),
    ),
    case(
        "From now on, don't apologize so much.",
        ("instruction", "instruction:don't apologize so much", "add"),
    ),
    case("Be more concise, please.", ("instruction", "instruction:length", "add")),
    case("When I say 'prod' I mean the EU cluster.", ("fact", "term:prod", "add")),
    case(
        "I no longer play the guitar.", ("fact", "", "retract", "User no longer plays the guitar")
    ),
    # negatives: questions, small talk, hypotheticals, requests, other people
    case("What's the capital of France?"),
    case("Thanks, that was really helpful!"),
    case("If I were vegetarian, what would I eat?"),
    case("If I were vegan I'd probably miss cheese."),
    case("My sister thinks I'm too thin."),
    case("Should I move to Berlin?"),
    case("I might move to Lisbon next year."),
    case("I'd love to live in Japan someday."),
    case("I wish I worked at Google."),
    case("Imagine I'm a pilot flying over the Alps."),
    case("Can you write a poem about cats?"),
    case("Write me a haiku about autumn."),
    case("lol ok"),
    case("I love that idea!"),
    case("I'm not sure about that."),
    case("Do you remember what I told you about my job?"),
    case("My friend said she is vegetarian."),
    case("Is it true that tomatoes are fruits?"),
    case("I'm going to think about it."),
    case("Tell me a joke."),
    case("I'm tired today."),
    case("Hello!"),
    case("I'm thinking about becoming vegetarian."),
    case("He works at Google and lives in Paris."),
    case("Good morning, how are you?"),
    case("Remember that pooling issue? Any new ideas?"),
    case("Forget the API, let's talk about food."),
    case("I have a meeting in 5 minutes, be quick."),
)

# Written after the rules were tuned on CASES, and scored once before any change to them: precision
# 0.893, recall 0.658 (25 of 38 items, 3 false positives). General fixes followed (contractions
# spelt out, "our son Leo", "Emma, my niece, ...", "my birthday's", deadlines of events are events,
# "for April"); the two implicit statements ("Shellfish makes me break out in hives") are still
# missed. Kept apart so that the gap between a tuned set and a fresh one stays visible.
HELD_OUT: tuple[Case, ...] = (
    case(
        "Hey! Name's Jordan, I'm a paramedic in Chicago.",
        ("fact", "name", "add", "User's name is Jordan"),
        ("fact", "occupation", "add", "User is a paramedic"),
    ),
    case("These days I live in Oslo.", ("fact", "location", "add", "User lives in Oslo")),
    case(
        "My husband and I moved to Porto last spring.",
        ("fact", "location", "add", "User lives in Porto"),
    ),
    case("I teach high school chemistry.", ("fact", "occupation", "add")),
    case(
        "I'm employed by Siemens as an electrical engineer.",
        ("fact", "employer", "add", "User works at Siemens"),
        ("fact", "occupation", "add", "User is an electrical engineer"),
    ),
    case("I got fired from Uber.", ("fact", "employer", "retract", "User no longer works at Uber")),
    case("I'm strictly vegetarian.", ("preference", "diet", "add", "User is vegetarian")),
    case("I gave up meat last year.", ("preference", "food:meat", "add")),
    case("Shellfish makes me break out in hives.", ("preference", "allergy:shellfish", "add")),
    case("I can't eat gluten.", ("preference", "food:gluten", "add")),
    case("I absolutely adore Italian opera.", ("preference", "taste:italian opera", "add")),
    case("Horror films scare me, I avoid them.", ("preference", "taste:horror films", "add")),
    case("My favourite food is ramen.", ("preference", "favorite:food", "add")),
    case("I'm not into football anymore.", ("preference", "taste:football", "retract")),
    case(
        "My younger sister Emma just started college.",
        ("relationship", "person:emma:sister", "add"),
    ),
    case(
        "Emma, my niece, is allergic to eggs.",
        ("relationship", "person:emma:niece", "add"),
        ("relationship", "person:emma:niece:allergy:egg", "add"),
    ),
    case(
        "My father-in-law is a retired pilot.",
        ("relationship", "person:father-in-law:occupation", "add"),
    ),
    case("I have a cat called Miso.", ("relationship", "person:miso:cat", "add")),
    case("Our son Leo turns 5 on Saturday.", ("relationship", "person:leo:son", "add")),
    case("My birthday's on December 2nd.", ("fact", "birthday", "add")),
    case(
        "The quarterly report is due on the 15th.",
        ("project", "project:quarterly report", "add"),
        attributes={"date": "2026-03-15"},
    ),
    case(
        "Our product demo is scheduled for next Wednesday.", ("event", "event:product demo", "add")
    ),
    case("I'm organizing a charity run for April.", ("project", "project:charity run", "add")),
    case("We finally launched the mobile app!", ("project", "project:mobile app", "add")),
    case(
        "I have a doctor's appointment on Thursday.",
        ("event", "event:doctor appointment", "add"),
        attributes={"date": "2026-03-12"},
    ),
    case("I'm visiting my parents next weekend.", ("event", "event:visiting parents", "add")),
    case(
        "My exam is in 10 days.", ("event", "event:exam", "add"), attributes={"date": "2026-03-20"}
    ),
    case(
        "Please always use British spelling.",
        ("instruction", "instruction:always use british spelling", "add"),
    ),
    case("Stop using bullet points.", ("instruction", "instruction:format", "add")),
    case("Remember: my locker code is 4512.", ("fact", "note:*", "add")),
    case("Forget my birthday.", ("fact", "birthday", "forget")),
    case(
        "Please forget that my brother is named Sam.",
        ("relationship", "person:sam:brother", "forget"),
    ),
    case("I don't work at Acme anymore.", ("fact", "employer", "retract")),
    case("I'm not living in Madrid anymore.", ("fact", "location", "retract")),
    case("My neighbor is a dentist.", ("relationship", "person:neighbor:occupation", "add")),
    case("Would a vegan diet be healthy for me?"),
    case("What if I moved to Canada?"),
    case("Can you recommend a good book?"),
    case("That's hilarious, thanks."),
    case("I guess I could try being vegetarian."),
    case("She lives in Boston and loves sushi."),
    case("If you were me, would you quit my job?"),
    case("I'll think about moving to Spain."),
    case("How do I center a div?"),
)
