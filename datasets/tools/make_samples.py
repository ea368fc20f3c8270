#!/usr/bin/env python3
"""Writes datasets/personal/: the sample notes, journal entries, chat export, mailbox, web page and PDF that
the quickstart ingests. Everything here was written for hearth (no third-party text); names, addresses
and keys are invented (example.com addresses, AWS's documented example key id). Run from anywhere:

    python3 datasets/tools/make_samples.py
"""
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(os.path.dirname(HERE), "personal")
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(HERE)), "tests", "data", "fixtures"))
import make_pdfs  # noqa: E402  (the hand-written PDF writer of the test fixtures)

NOTES = {
    "garden-plan.md": "---\ntitle: Garden plan\ntags: [garden]\n---\n# Garden plan\n\nTomatoes go in the south bed this year; "
    "last year the north bed stayed too damp.\n\nBasil between the tomatoes again. It kept the aphids away, or at least it "
    "felt like it did.\n\n- order seed potatoes before March\n- fix the gate latch\n- ask Mira about her compost bins\n",
    "sourdough.md": "# Sourdough notes\n\nStarter: 50 g rye, 50 g water, fed at 8 am and 8 pm. It peaks after about six hours "
    "in the kitchen, nine in the cellar.\n\nBest loaf so far: 72% hydration, 2% salt, overnight in the fridge. The crust "
    "cracked beautifully when I baked it straight from cold.\n",
    "reading-list.md": "# Reading list\n\n1. The book about rivers Jonas lent me (return it!)\n2. Something on the history "
    "of maps\n3. The collected letters I keep starting and never finishing\n\nFinished this month: the short novel about "
    "the lighthouse keeper. Slow, then suddenly not slow at all.\n",
    "bike-maintenance.md": "# Bike\n\nChain cleaned and oiled on the first Sunday of each month. Tyres at 4.5 bar front, "
    "5 bar back.\n\nThe rear brake squeals in the rain: new pads are in the drawer under the stairs.\n",
    "wifi.md": "# Home network\n\nRouter admin lives at the usual address. wifi password: blue-kettle-42\n\nThe printer only "
    "works on the 2.4 GHz network, don't ask me why.\n",
    "deploy-notes.md": "# Deploy notes (side project)\n\nThe staging box pulls from the main branch every night.\n\nOld CI "
    "key, revoked but still here: AKIAIOSFODNN7EXAMPLE\n\nMirror: https://deploy:s3cr3tpass@git.example.com/site.git\n",
    "ssh-backup.md": "# Backup of the old laptop key (revoked)\n\n-----BEGIN OPENSSH PRIVATE KEY-----\n"
    "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW\nQyNTUxOQAAACBexampleexampleexampleexample\n"
    "-----END OPENSSH PRIVATE KEY-----\n\nNew key is on the hardware token now.\n",
    "recipes/lentil-soup.md": "# Lentil soup\n\nOne onion, two carrots, a stick of celery, all small. Soften in olive "
    "oil, add cumin and a little smoked paprika.\n\n200 g red lentils, a litre of stock, twenty minutes. Lemon juice at "
    "the end is what makes it.\n",
    "recipes/pancakes.md": "# Saturday pancakes\n\n250 g flour, two eggs, half a litre of milk, a pinch of salt. Rest "
    "the batter for half an hour if there is time.\n\nThe kids like them thin; I like them with stewed apples.\n",
    "trip-coast.md": "# Coast trip ideas\n\nTrain to the end of the line, then the cliff path north. Two nights in "
    "the village with the blue harbour.\n\nPack: rain jacket, the good socks, binoculars for the seals.\n",
    "meeting-prep.md": "# Before the team meeting\n\nThree things to raise: the release checklist is too long, nobody "
    "owns the flaky test, and we should rotate who writes the notes.\n\nKeep it short. Ask before proposing.\n",
    "ideas.txt": "Ideas, unsorted\n\nA tiny app that tells me which houseplant needs water today.\n\nA walking map of "
    "every bakery within three kilometres.\n\nTeach the neighbourhood kids to fix bike punctures on a Saturday.\n",
    "quotes.txt": "Things people said that stuck\n\nGran: a job done in a hurry is a job done twice.\n\nMy first "
    "manager: write the email you would want to receive.\n\nThe climbing instructor: trust your feet more than your hands.\n",
    "todo.txt": "This week\n\nCall the dentist. Renew the library card. Return the drill to Sam. Book the train for "
    "the coast trip before prices go up.\n",
    "todo-copy.txt": "This week\n\nCall the dentist. Renew the library card. Return the drill to Sam. Book the train "
    "for the coast trip before prices go up.\n",
    "contacts.txt": "Useful numbers\n\nPlumber (Ana): +44 20 7946 0958\nVet: ask at reception, vet@example.com\n",
    "language-learning.md": "# Learning Portuguese\n\nTwenty minutes a day works better than two hours on Sunday. The "
    "verb tables stick when I say them out loud on the walk to work.\n\nWords I keep forgetting: saudade, desenrascar, "
    "cafuné.\n",
    "running-log.md": "# Running log\n\nMonday: 5 km easy, legs heavy.\nWednesday: intervals, 6 x 400 m, felt strong.\n"
    "Saturday: 12 km along the canal, new best for the long run.\n\nNext: build up to 15 km before the autumn race.\n",
    "house-moves.md": "# Moving checklist\n\nTell the bank, the doctor and the council. Redirect post for three "
    "months. Measure the stairs before buying the sofa, this time.\n",
    "birthday-gifts.md": "# Gift ideas\n\nLeo: the puzzle book with the lighthouse on the cover.\nMira: seeds for the "
    "purple beans she liked.\nDad: a proper bread knife; he keeps borrowing mine.\n",
}

JOURNAL = [
    ("2024-03-02.md", "Cold, bright morning. Walked to the market and bought far too many oranges. Spent the "
     "afternoon repotting the fig tree, which is now taller than me and sulking about it."),
    ("2024-03-09.md", "Rained all day. Finished the jigsaw puzzle that has been on the table since January; the "
     "last piece was under the cat, obviously."),
    ("2024-03-16.md", "First dinner outside this year, in coats. Mira brought the lentil soup recipe back "
     "improved: more lemon, less cumin. She is right."),
    ("2024-03-23.md", "Long run along the canal. Saw a heron standing so still I thought it was a sculpture until "
     "it flew off, annoyed at me."),
    ("2024-03-30.md", "Fixed the gate latch at last. It took ten minutes; I have been putting it off for a year."),
    ("2024-04-06.md", "Sourdough experiment: added toasted seeds. The crumb was denser but the flavour was worth it. "
     "Next time soak the seeds first."),
    ("2024-04-13.md", "Quiet weekend. Read on the balcony, called Gran, learned that she once drove a tractor "
     "across a frozen lake, which nobody had ever mentioned."),
    ("2024-04-20.md", "Helped Sam move flats. Three flights of stairs and a piano. My arms will remember this "
     "for a week."),
    ("2024-04-27.md", "Planted the tomatoes in the south bed. Basil next to them, marigolds at the ends. Fingers "
     "crossed for a warm May."),
    ("2024-05-04.md", "Trip to the coast: the cliff path, the blue harbour, two seals on the rocks and fish and "
     "chips in the rain. Perfect."),
]

CHATS = [
    [("user", "Can you help me plan a week of simple vegetarian dinners?"),
     ("assistant", "Of course. Monday lentil soup with bread, Tuesday a vegetable stir-fry with rice, Wednesday "
      "pasta with tomato and white beans, Thursday a big salad with roasted chickpeas, Friday homemade pizza.")],
    [("system", "You are a concise assistant."),
     ("user", "What hydration should I use for a first sourdough loaf?"),
     ("assistant", "Start around 70%: it is forgiving to shape. Go higher once you are comfortable."),
     ("user", "And how long should it proof in the fridge?"),
     ("assistant", "Overnight, 10 to 14 hours, then bake straight from cold.")],
    [("user", "Give me three ways to remember new words in a language."),
     ("assistant", "Say them out loud in a sentence, review them the next day and a week later, and use them in a "
      "message to a friend.")],
    [("user", "My bike brake squeals in the rain. Why?"),
     ("assistant", "Wet rims or discs and worn or glazed pads are the usual cause. Clean the braking surface and "
      "replace the pads if they are thin.")],
    [("user", "Write a two-line birthday note for my dad, who loves bread."),
     ("assistant", "Happy birthday, Dad! Here is a proper bread knife, so you can finally give mine back.")],
]

MBOX = """From mira@example.com Sat Mar 16 09:12:00 2024
From: Mira <mira@example.com>
To: me@example.com
Subject: Soup
Date: Sat, 16 Mar 2024 09:12:00 +0000
Content-Type: text/plain; charset=utf-8

Tried your lentil soup. More lemon next time, and less cumin! Bringing it over tonight.

--
Mira

From me@example.com Sat Mar 16 10:03:00 2024
From: Me <me@example.com>
To: mira@example.com
Subject: Re: Soup
Date: Sat, 16 Mar 2024 10:03:00 +0000
Content-Type: text/plain; charset=utf-8

Deal. I will make bread to go with it.

On Sat, 16 Mar 2024, Mira wrote:
> Tried your lentil soup. More lemon next time, and less cumin!

From sam@example.com Sun Apr 21 18:40:00 2024
From: Sam <sam@example.com>
To: me@example.com
Subject: Thanks for yesterday
Date: Sun, 21 Apr 2024 18:40:00 +0000
MIME-Version: 1.0
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: quoted-printable

Thank you for helping with the move. The piano survived, and so did we. Dinn=
er is on me next week.

Sent from my phone
"""

HTML = """<!DOCTYPE html>
<html><head><title>Saved article</title>
<style>body { font-family: serif; }</style>
<script>console.log("tracking");</script></head>
<body>
<nav><a href="/">Home</a></nav>
<h1>Why bread goes stale</h1>
<p>Stale bread is not dry bread: the starch <em>recrystallises</em> as it cools, which is why a stale loaf
softens again in a hot oven.</p>
<p>Keep bread at room temperature, cut side down. The fridge speeds staling up; the freezer stops it.</p>
<p>Tip &mdash; toast revives almost anything &amp; nobody will know.</p>
</body></html>
"""


def write(rel, text):
    path = os.path.join(OUT, rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)


def main():
    for name, text in NOTES.items():
        write(os.path.join("notes", name), text)
    for name, text in JOURNAL:
        write(os.path.join("journal", name), "# " + name[:-3] + "\n\n" + text + "\n")
    lines = []
    for i, chat in enumerate(CHATS):
        if i == 1:  # one in ShareGPT shape, as some exporters write it
            who = {"user": "human", "assistant": "gpt", "system": "system"}
            lines.append(json.dumps({"conversations": [{"from": who[r], "value": c} for r, c in chat]}))
        else:
            lines.append(json.dumps({"messages": [{"role": r, "content": c} for r, c in chat]}))
    lines.append(json.dumps({"prompt": "Translate to Portuguese: good morning", "completion": " bom dia"}))
    write(os.path.join("chats", "assistant-export.jsonl"), "\n".join(lines) + "\n")
    write(os.path.join("mail", "inbox.mbox"), MBOX)
    write(os.path.join("web", "why-bread-goes-stale.html"), HTML)
    pdf = os.path.join(OUT, "docs", "garden-report.pdf")
    os.makedirs(os.path.dirname(pdf), exist_ok=True)
    make_pdfs.write_pdf(pdf, [make_pdfs.text_stream(["Garden report, spring", "The fig tree was repotted in March.",
                                                     "Tomatoes planted in the south bed in late April."]),
                              make_pdfs.text_stream(["Plans: a second compost bin and a rain barrel."])])


if __name__ == "__main__":
    main()
