"""Adapters that put Signoff into agent frameworks: each module is one framework, installed by its extra."""
