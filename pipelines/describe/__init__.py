"""The ``describe`` step: an honest built-in scene description and an external provider chain.

One job per module:

* :mod:`~pipelines.describe.wording` — the English of measured facts (plurals, positions, sentences);
* :mod:`~pipelines.describe.builtin` — :class:`Description` and the built-in description of one frame;
* :mod:`~pipelines.describe.segment` — the built-in description of a segment of frames (counts, motion);
* :mod:`~pipelines.describe.chain` — which providers a task tries, and failover between them;
* :mod:`~pipelines.describe.errors` — :class:`UnknownProviderError` (400) and :class:`DescribeError` (502).

The provider client itself is :mod:`store.vlm`. Every public name stays importable from here.
"""

from pipelines.describe.builtin import BUILTIN_ALIASES, BUILTIN_PROVIDER, Description, describe_frame
from pipelines.describe.chain import DescribeChain, VLMDescriber, build_prompt, resolve_chain
from pipelines.describe.errors import DescribeError, UnknownProviderError
from pipelines.describe.segment import MOTION_THRESHOLD, SegmentDescriber, motion_phrase
from pipelines.describe.wording import (
    colour_sentence,
    counted,
    faces_in,
    join_words,
    plural,
    position_of,
    texts_of,
)
from store.vlm import ProviderConfig, ProviderError, providers_from_settings

__all__ = [
    "BUILTIN_ALIASES",
    "BUILTIN_PROVIDER",
    "MOTION_THRESHOLD",
    "DescribeChain",
    "DescribeError",
    "Description",
    "ProviderConfig",
    "ProviderError",
    "SegmentDescriber",
    "UnknownProviderError",
    "VLMDescriber",
    "build_prompt",
    "colour_sentence",
    "counted",
    "describe_frame",
    "faces_in",
    "join_words",
    "motion_phrase",
    "plural",
    "position_of",
    "providers_from_settings",
    "resolve_chain",
    "texts_of",
]
