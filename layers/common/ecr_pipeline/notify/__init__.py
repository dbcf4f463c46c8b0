"""notify: the message model, its words, the notifier, delivery once per (fact, channel), what is
kept when a delivery is given up on, and the renderings.

model (Message, Finding, Link) <- urls, readers <- words <- render <- notifier, delivery;
facts (the business fact each event tells) <- notifier; delivery <- undelivered (kept, replayed).
"""
