"""Processor types: how a job turns an input blob into an output document.

``base`` holds the interface, ``catalog`` finds the types (entry points of the
group ``inkstream.processors``); ``text_expansion`` and ``js_transform`` are
the built-in ones.
"""
