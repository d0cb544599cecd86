"""The Connector API's XML documents: hardened parsing, field rules, answers."""
