"""Likelihoods: decoder features -> p(x|z), one file per kind of data (mirrors ``latents/``)."""

from vae_lab.likelihoods.base import DATA_TYPES, Likelihood
from vae_lab.likelihoods.bernoulli import BernoulliLikelihood, IndependentBernoulli
from vae_lab.likelihoods.discretized_logistic import DiscretizedLogisticLikelihood
from vae_lab.likelihoods.gaussian import GaussianLikelihood
from vae_lab.likelihoods.text import BagOfWords, BagOfWordsLikelihood, TokenSequence, TokenSequenceLikelihood

__all__ = [
    "DATA_TYPES",
    "BagOfWords",
    "BagOfWordsLikelihood",
    "BernoulliLikelihood",
    "DiscretizedLogisticLikelihood",
    "GaussianLikelihood",
    "IndependentBernoulli",
    "Likelihood",
    "TokenSequence",
    "TokenSequenceLikelihood",
]
