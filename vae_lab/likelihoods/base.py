"""The likelihood interface: decoder features -> p(x|z), a torch distribution over the whole x.

A likelihood declares which kind of data it models (``data_types``, matched against the data
config's ``type`` before anything is built) and whether it is a discrete density over 8-bit
values, for which bits per dimension are reported (``reports_bits_per_dim``), and whether its
mean is a point of the data space, for which the per-dimension MSE is reported
(``has_data_space_mean``: images, not sentences or word counts).
"""

from __future__ import annotations

from torch import nn

# The kinds of data a data config can declare (`type:` in conf/data/*.yaml).
DATA_TYPES = ("binary", "8bit", "continuous", "token_sequence", "word_counts")


class Likelihood(nn.Module):
    data_types: tuple[str, ...] = ()
    reports_bits_per_dim = False
    has_data_space_mean = False  # p(x|z).mean is a point of the data space: per-dimension MSE is reported

    @classmethod
    def fits(cls, data_type: str) -> bool:
        return data_type in cls.data_types

    def training_logs(self) -> dict:
        """The likelihood's own parameters worth a curve (e.g. a learned variance), logged as train/<name>."""
        return {}
