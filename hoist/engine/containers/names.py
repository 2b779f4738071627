"""Container names: Docker's validation and an adjective_surname generator (own lists)."""
from __future__ import annotations

import random
import re

from ...errors import InvalidArgument

NAME_RE = re.compile(r"^/?[a-zA-Z0-9][a-zA-Z0-9_.-]+$")

_LEFT = ("agile", "bold", "brave", "calm", "clever", "cosmic", "crisp", "daring", "eager",
         "fervent", "gentle", "happy", "honest", "jolly", "keen", "lucid", "merry", "mighty",
         "nimble", "noble", "patient", "proud", "quiet", "rapid", "serene", "sharp", "silent",
         "steady", "swift", "tender", "upbeat", "vivid", "wise", "witty", "zealous")
_RIGHT = ("ampere", "babbage", "bohr", "curie", "darwin", "dirac", "euler", "faraday",
          "fermi", "galois", "gauss", "hopper", "hypatia", "joule", "kepler", "lamarr",
          "lovelace", "maxwell", "meitner", "newton", "noether", "pascal", "planck",
          "ramanujan", "riemann", "shannon", "tesla", "turing", "volta", "wiles", "yalow")


def random_name(retry: int = 0) -> str:
    name = f"{random.choice(_LEFT)}_{random.choice(_RIGHT)}"
    if retry:
        name += str(random.randint(0, 9))
    return name


def validate_name(name: str) -> str:
    if not NAME_RE.match(name):
        raise InvalidArgument(f"Invalid container name ({name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")
    return name.lstrip("/")
