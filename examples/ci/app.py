"""The tiny application the CI example checks, tests and packages."""


def slug(title: str) -> str:
    """'Hello, World!' -> 'hello-world'."""
    words = "".join(ch if ch.isalnum() else " " for ch in title.lower()).split()
    return "-".join(words)
