"""Panorama gateway: GraphQL over the shops and the CRM."""
