"""What the reference side of `cargo xtask bench` shares between its scripts: the JSON
lines xtask reads, the timing of warm-up plus measured runs, and the BERT2BERT of the
summarisation experiment. The scripts under crates/*/bench/ import it with
`sys.path.insert(0, <repository>/python)`.
"""
import json
import sys
import time


def emit(case, metric, value, better):
    """One result line: `better` is "higher" or "lower"."""
    print(json.dumps({"case": case, "metric": metric, "value": value, "better": better}), flush=True)


def median_seconds(run, reps, label):
    """Calls `run()` once to warm up, then `reps` times; prints each call's seconds to
    stderr as `{label} run {i}` and returns the median of the measured calls (the upper
    middle one for an even count, as the Rust side takes it)."""
    times = []
    for rep in range(reps + 1):
        start = time.perf_counter()
        run()
        elapsed = time.perf_counter() - start
        if rep > 0:
            times.append(elapsed)
        print(f"{label} run {rep}: {elapsed:.3f} s", file=sys.stderr)
    times.sort()
    return times[len(times) // 2]


def bert2bert_config():
    """bert-small2bert-small (`mrm8488/bert-small2bert-small-finetuned-cnn_daily_mail-
    summarization`'s architecture): decoder start [CLS] = 101, pad 0."""
    from transformers import BertConfig, EncoderDecoderConfig

    def bert_small(decoder):
        return BertConfig(
            vocab_size=30522, hidden_size=512, num_hidden_layers=4, num_attention_heads=8,
            intermediate_size=2048, max_position_embeddings=512,
            is_decoder=decoder, add_cross_attention=decoder,
        )

    config = EncoderDecoderConfig.from_encoder_decoder_configs(bert_small(False), bert_small(True))
    config.decoder_start_token_id = 101
    config.pad_token_id = 0
    return config


def seeded_ids(batch, length, seed):
    """Token ids in [1000, 30000) from a seeded generator."""
    import torch

    g = torch.Generator().manual_seed(seed)
    return torch.randint(1000, 30000, (batch, length), generator=g)
