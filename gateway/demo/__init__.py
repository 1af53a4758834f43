"""The embedded demo world: a baker's shops and CRM, generated from a seed."""
