//! Next-token evaluation in chunks of positions: whatever the memory budget, every
//! position gets the numbers of the unchunked computation.

use burn::tensor::{Device, TensorData};
use scalegrad_gpt2::Gpt2Config;
use scalegrad_ops::Execution;
use scalegrad_train::open_ended::next_token_predictions;

const VOCAB: usize = 97;

#[test]
fn chunked_predictions_equal_the_unchunked_ones() {
    let device = Device::flex();
    let model = Gpt2Config::tiny(VOCAB)
        .init(&device)
        .with_execution(Execution::Host);
    let (batch, window) = (3, 20);
    let ids: Vec<i64> = (0..batch * (window + 1))
        .map(|i| ((i * 31 + i / 7) % VOCAB) as i64)
        .collect();
    let mut inputs = Vec::new();
    let mut targets = Vec::new();
    for row in ids.chunks(window + 1) {
        inputs.extend_from_slice(&row[..window]);
        targets.extend_from_slice(&row[1..]);
    }
    let run = |chunk_bytes: usize| {
        next_token_predictions(
            &model,
            TensorData::new(inputs.clone(), [batch, window]),
            TensorData::new(targets.clone(), [batch, window]),
            chunk_bytes,
        )
        .unwrap()
    };
    // All 60 positions at once, against one position per chunk and an uneven 7 per
    // chunk (the last chunk shorter).
    let whole = run(usize::MAX / 2);
    assert_eq!(whole.nll.len(), batch * window);
    for chunk_bytes in [1, 7 * VOCAB * 4 + 3] {
        let chunked = run(chunk_bytes);
        assert_eq!(chunked.argmax, whole.argmax, "budget {chunk_bytes}");
        assert_eq!(chunked.ranks, whole.ranks, "budget {chunk_bytes}");
        for (i, (a, b)) in chunked.nll.iter().zip(&whole.nll).enumerate() {
            assert!(
                (a - b).abs() < 1e-5,
                "budget {chunk_bytes}, position {i}: chunked {a}, whole {b}"
            );
        }
    }
    // The statistics are not degenerate: some hits, some misses, spread-out NLLs.
    assert!(whole.ranks.iter().any(|&r| r > 0));
    assert!(whole.nll.iter().any(|&x| (x - whole.nll[0]).abs() > 1e-3));
}
