"""notify: the message model, its words, the notifier, delivery once per channel, and the renderings.

model (Message, Finding, Link) <- urls, readers <- words <- render <- notifier, delivery.
"""
