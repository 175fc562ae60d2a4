"""Synthetic users' conversations for the benchmarks: user turns that state varied first-person facts ("My sister is
called Ana.", "I live in Porto.") with the assistant's restatement, some general questions, and a home built from
them (a prior set marked consolidated for replay, and a new set to learn). Deterministic given a seed."""
from __future__ import annotations

import json
import random
import time
from pathlib import Path

USERS = ["ana", "ben", "chloe", "dev", "eva"]

# Slot values for the synthetic facts (each user statement picks a template and fills it with the RNG).
_NAMES = ("Ana Tom Rita Marco Lena Yusuf Ines Pavel Sara Kofi Mei Jonas Lucia Omar Hana Felix Nora Diego Ivy Raj "
          "Elif Bruno Maya Theo").split()
_RELATIONS = ("sister", "brother", "dog", "cat", "best friend", "daughter", "son", "mother", "father", "neighbour",
              "boss", "cousin")
_CITIES = ("Porto Lyon Berlin Oslo Kyoto Austin Lima Cork Gdansk Turin Leeds Quebec Hobart Nairobi Seville "
           "Tartu").split()
_JOBS = ("nurse", "teacher", "carpenter", "software engineer", "baker", "pharmacist", "pilot", "librarian",
         "electrician", "translator", "vet", "architect")
_FAV = {"food": ("sushi", "lasagne", "ramen", "paella", "dumplings"), "colour": ("green", "orange", "navy blue"),
        "band": ("Radiohead", "ABBA", "Queen", "Daft Punk"), "sport": ("tennis", "rowing", "basketball"),
        "book": ("Dune", "Middlemarch", "The Hobbit")}
_PETS = ("cats", "dogs", "rabbits", "goldfish", "parrots")
_NUMS = ("two", "three", "four")
_ALLERGENS = ("peanuts", "pollen", "shellfish", "cats", "penicillin")
_INSTRUMENTS = ("cello", "piano", "guitar", "violin", "drums")
_CARS = ("Fiat", "Toyota", "Volvo", "Skoda", "Honda")
_HOBBIES = ("climbing", "knitting", "birdwatching", "chess", "sourdough baking", "trail running")
_MONTHS = ("January", "March", "May", "July", "September", "November")
_FILLERS = ("", "", "", "Oh, by the way, ", "Just so you know, ", "Hi! ")
_ACKS = ("Thanks for telling me.", "Good to know!", "Got it, I will remember that.", "Nice, noted.",
         "That's lovely to hear.")
_EXTRA = (
    "If you ever want suggestions related to that, just ask and I will take it into account.",
    "It helps me give you answers that fit your life better.",
    "Is there anything else about your week you would like to talk about?",
    "Many people find that small routines like this make the day feel more manageable and pleasant.",
    "I can also help you plan around it, for example when you organise trips, meals or weekends with friends.",
)
_QUESTIONS = (
    ("What should I cook tonight?", "A quick vegetable stir-fry with rice is easy and healthy. You could add tofu or "
     "chicken, some garlic, ginger and soy sauce, and it is ready in twenty minutes."),
    ("Can you recommend a good book?", "You might enjoy a classic novel or a popular science book; tell me what you "
     "liked recently and I can narrow it down."),
    ("How do I make bread?", "Mix flour, water, salt and yeast, knead for ten minutes, let it rise until doubled, "
     "shape it, let it rise again and bake at about 220 degrees for thirty minutes."),
    ("Tell me a joke.", "Why did the scarecrow win an award? Because he was outstanding in his field."),
    ("Any tips for sleeping better?", "Keep a regular schedule, avoid screens for an hour before bed, keep the room "
     "cool and dark, and limit caffeine after lunch."),
)


def _fact(rng: random.Random) -> tuple[str, str]:
    """One first-person statement and the assistant's restatement of it."""
    kind = rng.randrange(11)
    if kind == 0:
        rel, name = rng.choice(_RELATIONS), rng.choice(_NAMES)
        return f"My {rel} is called {name}.", f"Your {rel} is called {name}."
    if kind == 1:
        c = rng.choice(_CITIES)
        return f"I live in {c}.", f"You live in {c}."
    if kind == 2:
        c = rng.choice(_CITIES)
        return f"I grew up in {c}.", f"You grew up in {c}."
    if kind == 3:
        j = rng.choice(_JOBS)
        return f"I work as a {j}.", f"You work as a {j}."
    if kind == 4:
        n = rng.randint(19, 78)
        return f"I'm {n} years old.", f"You are {n} years old."
    if kind == 5:
        what = rng.choice(sorted(_FAV))
        v = rng.choice(_FAV[what])
        return f"My favourite {what} is {v}.", f"Your favourite {what} is {v}."
    if kind == 6:
        n, p = rng.choice(_NUMS), rng.choice(_PETS)
        return f"I have {n} {p}.", f"You have {n} {p}."
    if kind == 7:
        a = rng.choice(_ALLERGENS)
        return f"I am allergic to {a}.", f"You are allergic to {a}."
    if kind == 8:
        i = rng.choice(_INSTRUMENTS)
        return f"I play the {i}.", f"You play the {i}."
    if kind == 9:
        col, car = rng.choice(_FAV["colour"][:2] + ("red", "white")), rng.choice(_CARS)
        return f"I drive a {col} {car}.", f"You drive a {col} {car}."
    h = rng.choice(_HOBBIES)
    return f"I like {h}.", f"You like {h}."


def conversations(n_turns: int, seed: int, users: tuple[str, ...] = tuple(USERS)) -> list[dict]:
    """JSONL-ready conversations with exactly n_turns turns (user/assistant pairs, 1-4 pairs per conversation), each
    by one of `users`. About 85 % of user turns state one or two facts; the rest ask a general question. Replies
    vary in length."""
    rng = random.Random(seed)
    pairs_left = n_turns // 2
    out = []
    while pairs_left:
        k = min(pairs_left, rng.randint(1, 4))
        pairs_left -= k
        messages = []
        for _ in range(k):
            if rng.random() < 0.15:
                q, a = rng.choice(_QUESTIONS)
                messages += [{"role": "user", "content": q}, {"role": "assistant", "content": a}]
                continue
            facts = [_fact(rng) for _ in range(1 if rng.random() < 0.7 else 2)]
            user = rng.choice(_FILLERS) + " ".join(f for f, _ in facts)
            reply = " ".join([rng.choice(_ACKS)] + [r for _, r in facts] + rng.sample(_EXTRA, rng.randint(0, 3)))
            messages += [{"role": "user", "content": user}, {"role": "assistant", "content": reply}]
        out.append({"user": rng.choice(users), "messages": messages})
    return out


def build_home(home: Path, config, new_turns: int, prior_turns: int, seed: int,
               users: tuple[str, ...] = tuple(USERS)) -> dict:
    """Import the prior set, mark it consolidated (the replay pool), then import the new set (what this run learns),
    both by `users`."""
    from chatbot.memory.transfer import import_jsonl
    from chatbot.runtime import open_runtime

    started = time.perf_counter()
    rt = open_runtime(home, config, with_model=False)
    info: dict = {}
    try:
        for name, n, s in (("prior", prior_turns, seed + 1000), ("new", new_turns, seed)):
            if n == 0:
                info[name] = {"conversations": 0, "turns": 0}
                continue
            convs = conversations(n, s, users)
            path = home / f"{name}.jsonl"
            path.write_text("".join(json.dumps(c) + "\n" for c in convs), encoding="utf-8")
            report = import_jsonl(path, rt.store, rt.buffer, config.serve.default_user)
            if report.errors or report.duplicates or report.turns != n:
                raise SystemExit(f"importing the {name} set went wrong: {report.summary()} {report.errors[:3]}")
            if name == "prior":
                ids = [t.id for _, t in rt.store.learnable_turns(consolidated=False)]
                marked = rt.store.mark_consolidated(ids, "prior")
                assert marked == n, (marked, n)
            info[name] = {"conversations": report.imported, "turns": report.turns}
        info["learnable_new"] = len(rt.store.learnable_turns(consolidated=False))
        info["learnable_consolidated"] = len(rt.store.learnable_turns(consolidated=True))
    finally:
        rt.close()
    info["build_s"] = time.perf_counter() - started
    return info
