"""Renderings of a notification `Message`: Slack Block Kit, plain text (email), AWS Chatbot JSON."""
