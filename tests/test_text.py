"""Text VAEs: data layout, masks, likelihoods, perplexity and mutual information (real math checks)."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch
from torch.distributions import Independent, Normal

from tests.conftest import data_root
from vae_lab.data.bow import count_words, load_20newsgroups
from vae_lab.data.text import (
    BOS,
    EOS,
    NUM_INPUT_ONLY,
    PAD,
    UNK,
    BucketBatches,
    RaggedTokens,
    Vocabulary,
    count_predicted_tokens,
    load_text_corpus,
)
from vae_lab.latents.gaussian import GaussianLatent
from vae_lab.likelihoods.text import BagOfWordsLikelihood, TokenSequenceLikelihood
from vae_lab.metrics.latent import MutualInformation
from vae_lab.metrics.likelihood import importance_sampled_log_likelihood
from vae_lab.metrics.text import Perplexity
from vae_lab.model import VAEModule
from vae_lab.nets.text import LSTMDecoder, LSTMEncoder
from vae_lab.objectives import ELBO

V = 12  # outputs: end token, <unk>, 10 words


def small_vae(vocab: int = V, latent: int = 3, hidden: int = 16) -> VAEModule:
    torch.manual_seed(0)
    model = VAEModule(
        encoder=LSTMEncoder(vocab, embedding=8, hidden=hidden, dropout=0.0),
        latent=GaussianLatent(hidden, latent),
        decoder=LSTMDecoder(latent, vocab, embedding=8, hidden=hidden, dropout=0.0),
        likelihood=TokenSequenceLikelihood(hidden, vocab),
        objective=ELBO(),
        optimizer=None,
        data_dim=vocab,
    )
    return model.eval()


def sentences(*word_ids: list[int]) -> torch.Tensor:
    """Padded batch of <bos> w… <eos> sentences, word ids given as 0-based word indices."""
    return RaggedTokens.from_lists([[BOS, *(4 + w for w in ws), EOS] for ws in word_ids])[torch.arange(len(word_ids))]


def test_vocabulary_counts_end_token_not_start_or_padding():
    vocab = Vocabulary.from_sentences([["a", "b", "a"], ["c", "<unk>"]], size=5, unk_token="<unk>")
    assert vocab.num_classes == 5 and vocab.words == ["a", "b", "c"]
    ids = vocab.encode(["a", "zzz", "c"])
    assert ids == [BOS, 4, UNK, 6, EOS] and vocab.decode(ids + [PAD]) == "a <unk> c"
    x = RaggedTokens.from_lists([ids, vocab.encode(["b"])])[torch.tensor([0, 1])]
    assert x.tolist() == [[BOS, 4, UNK, 6, EOS], [BOS, 5, EOS, PAD, PAD]]
    assert count_predicted_tokens(x).tolist() == [4, 2]  # 3 words + end; 1 word + end


def test_vocabulary_too_small_for_vocab_size_says_which_size_to_set():
    with pytest.raises(Exception, match="set data.vocab_size=4"):
        Vocabulary.from_sentences([["a", "b"]], size=9, unk_token="<unk>")


def test_bucket_batches_deal_every_eval_example_once_and_train_evenly():
    lengths = torch.randint(3, 30, (103,), generator=torch.Generator().manual_seed(0))
    data = RaggedTokens.from_lists([[BOS] + [4] * int(n - 2) + [EOS] for n in lengths])
    ranks = [BucketBatches(data, 10, shuffle=False, rank=r, world_size=2) for r in (0, 1)]
    seen = sorted(i for loader in ranks for i, _ in loader._batches())
    assert seen == list(range(11)) and [len(r) for r in ranks] == [6, 5]  # whole batches, round-robin
    covered = torch.cat([idx for loader in ranks for _, idx in loader._batches()])
    assert sorted(covered.tolist()) == list(range(103))
    batch, _ = next(iter(ranks[0]))
    assert (batch != PAD).sum(-1).max() - (batch != PAD).sum(-1).min() <= 3  # length buckets
    # Training under DDP: each process takes its half of every single-process batch, padded to the
    # batch's longest sentence (so noise drawn for the global batch has one shape); the partial
    # batch of 3 does not halve and is left out.
    single = [(x, i) for (x,), i in BucketBatches(data, 10, shuffle=True, seed=1)]
    shares = [
        [(x, i) for (x,), i in BucketBatches(data, 10, shuffle=True, seed=1, rank=r, world_size=2)] for r in (0, 1)
    ]
    whole = [(x, i) for x, i in single if len(x) == 10]
    assert len(single) == 11 and len(shares[0]) == len(shares[1]) == len(whole) == 10
    for (x, i), (a, ia), (b, ib) in zip(whole, *shares, strict=True):
        assert i == ia == ib and torch.equal(torch.cat([a, b]), x)


def test_uniform_decoder_has_perplexity_equal_to_the_vocabulary_size():
    model = small_vae()
    torch.nn.init.zeros_(model.likelihood.head.weight)
    torch.nn.init.zeros_(model.likelihood.head.bias)
    x = sentences([1, 2, 3], [4], [5, 6, 7, 8, 9])
    ppl = Perplexity(count_predicted_tokens, source="neg_elbo")
    ppl.update(x=x, neg_elbo=-model.decode(model.posterior(x).mean).log_prob(x))
    assert float(ppl.compute()) == pytest.approx(V, rel=1e-5)

    bow = BagOfWordsLikelihood(4, 50)
    torch.nn.init.zeros_(bow.head.weight)
    torch.nn.init.zeros_(bow.head.bias)
    counts = torch.randint(0, 4, (6, 50)).float()
    ppl = Perplexity(count_words, source="nll")
    ppl.update(x=counts, nll=-bow(torch.randn(6, 4)).log_prob(counts))
    assert float(ppl.compute()) == pytest.approx(50, rel=1e-5)


def test_padding_never_contributes_to_loss_features_or_counts():
    model = small_vae()
    long, short = [1, 2, 3, 4, 5, 6, 7], [8, 9]
    alone, batched = sentences(short), sentences(long, short)
    assert batched.shape[1] > alone.shape[1]
    assert torch.allclose(model.encoder(alone)[0], model.encoder(batched)[1], atol=1e-6)
    z = torch.randn(1, 3)
    p_alone = model.decode(z).log_prob(alone)
    p_batched = model.decode(z.expand(2, 3)).log_prob(batched)[1]
    padded_more = torch.cat([alone, torch.full((1, 5), PAD)], dim=1)
    assert torch.allclose(p_alone, p_batched, atol=1e-5)
    assert torch.allclose(p_alone, model.decode(z).log_prob(padded_more), atol=1e-6)
    assert count_predicted_tokens(padded_more).tolist() == count_predicted_tokens(alone).tolist() == [3]


def test_sequence_log_prob_broadcasts_over_samples_and_chunking_does_not_matter():
    model = small_vae()
    x = sentences([1, 2, 3], [4, 5])
    z = torch.randn(7, 2, 3)  # (S, B, L)
    joint = model.decode(z).log_prob(x)
    assert joint.shape == (7, 2)
    one_by_one = torch.stack([model.decode(z[s]).log_prob(x) for s in range(7)])
    assert torch.allclose(joint, one_by_one, atol=1e-5)
    model.likelihood.chunk_elements = 1  # one row per chunk
    assert torch.allclose(joint, model.decode(z).log_prob(x), atol=1e-5)


def test_sequence_log_prob_is_the_teacher_forced_sum_of_log_softmax_at_each_target():
    """Against a step-by-step reference: run the decoder LSTM one token at a time and add
    log softmax(head(h_t))[x_{t+1}] over the real tokens of each sentence."""
    model = small_vae()
    x = sentences([1, 2, 3, 4], [5], [])  # padding in two rows; the last predicts only <eos>
    z = torch.randn(3, 3)
    decoder = model.decoder(z)
    expected = []
    for row, ids in enumerate(x):
        state, total = decoder.initial_state(slice(row, row + 1)), 0.0
        for t in range(len(ids) - 1):
            if ids[t + 1] == PAD:
                break
            features, state = decoder.run(ids[None, t : t + 1], state, slice(row, row + 1))
            log_p = torch.log_softmax(model.likelihood.head(features[0, 0]), -1)
            total += log_p[ids[t + 1] - NUM_INPUT_ONLY]  # outputs: end token, <unk>, words
        expected.append(total)
    torch.testing.assert_close(model.decode(z).log_prob(x), torch.stack(expected), rtol=1e-5, atol=1e-5)


def test_ancestral_samples_start_with_bos_and_pad_after_the_end_token():
    model = small_vae()
    model.likelihood.max_length = 20
    samples = model.decode(torch.randn(2, 16, 3)).sample()
    assert samples.shape[:2] == (2, 16) and (samples[..., 0] == BOS).all()
    for row in samples.reshape(-1, samples.shape[-1]).tolist():
        if EOS in row:
            assert all(t == PAD for t in row[row.index(EOS) + 1 :])


def test_nll_is_nonnegative_and_the_importance_bound_is_above_the_elbo():
    model = small_vae()
    x = sentences([1, 2, 3], [4], [5, 6, 7, 8, 9], [0, 0])
    torch.manual_seed(1)
    with torch.no_grad():
        q, prior = model.posterior(x), model.prior()
        log_px = importance_sampled_log_likelihood(q, prior, lambda z: model.decode(z).log_prob(x), 200)
        z = q.sample((200,))
        elbo = model.decode(z).log_prob(x) + prior.log_prob(z) - q.log_prob(z)  # (S, B)
    assert (-log_px >= 0).all()
    assert (log_px >= elbo.mean(0) - 0.05).all()


def features_model(posterior_family=lambda h: Independent(Normal(h, torch.ones_like(h)), 1)):
    """Model stand-in whose encoder passes features through: q(z|x) = N(x, I), with the Gaussian
    family's pairwise densities (one matmul)."""
    latent = SimpleNamespace(
        posterior=posterior_family, pairwise_log_density=lambda q, z: GaussianLatent.pairwise_log_density(None, q, z)
    )
    return SimpleNamespace(encoder=torch.nn.Identity(), latent=latent)


def test_mutual_information_is_zero_for_a_posterior_independent_of_x():
    torch.manual_seed(0)
    mi = MutualInformation()
    for _ in range(3):  # three evaluation batches
        mi.update(model=features_model(), x=torch.zeros(200, 2))
    assert abs(float(mi.compute())) < 1e-5


def test_mutual_information_recovers_log2_for_two_separated_codes():
    torch.manual_seed(0)
    mi = MutualInformation(chunk_elements=40_000)  # 20 rows per chunk: exercises chunking
    for _ in range(2):
        labels = torch.randint(0, 2, (500, 1)).float()
        mi.update(model=features_model(), x=(labels * 2 - 1) * 20 * torch.ones(500, 2))
    assert float(mi.compute()) == pytest.approx(math.log(2), abs=1e-3)


def test_mutual_information_of_the_lstm_vae_is_bounded_by_log_n():
    model = small_vae()
    mi = MutualInformation()
    mi.update(model=model, x=sentences([1], [2, 3], [4, 5, 6]))
    value = float(mi.compute())
    assert math.isfinite(value) and -1e-5 <= value <= math.log(3) + 1e-5


def test_lstm_encoder_refuses_continuous_inputs_with_the_vamp_explanation():
    encoder = LSTMEncoder(V, embedding=4, hidden=4)
    with pytest.raises(TypeError, match="prior=vamp has no meaning for token sequences"):
        encoder(torch.rand(5, V))


needs_text_data = pytest.mark.skipif(
    data_root() is None or not (data_root() / "ptb" / "ptb.train.txt").exists(), reason="PTB/20NG not found"
)


@needs_text_data
def test_ptb_has_the_standard_10k_vocabulary_and_token_counts():
    splits = load_text_corpus(root=data_root())
    assert splits.vocabulary.num_classes == 10000
    counts = {s: int((getattr(splits, s).lengths - 1).sum()) for s in ("train", "valid", "test")}
    # MANIFEST: tokens incl. one <eos> per line 929589 / 73760 / 82430.
    assert counts == {"train": 929589, "valid": 73760, "test": 82430}


@needs_text_data
def test_20newsgroups_counts_and_a_1000_document_valid_split_from_train():
    splits = load_20newsgroups(root=data_root())
    assert splits.train.shape[1] == 2000 and len(splits.valid) == 1000
    assert len(splits.train) + len(splits.valid) == 11268 and len(splits.test) == 7505
    assert int((splits.train.sum() + splits.valid.sum()).item()) == 1128881
    assert int(splits.test.sum().item()) == 720898
