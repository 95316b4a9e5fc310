//! The bert-small2bert-small architecture (random weights) trains on `flex`: one AdamW
//! step on a cross-entropy loss with ignored padding gives a finite loss, moves the
//! encoder, decoder and tied LM-head parameters, and lowers the loss on the same batch.

use burn::module::Module;
use burn::optim::{AdamWConfig, GradientsParams};
use burn::tensor::{Device, Int, Tensor, TensorData};
use scalegrad_bert2bert::{Bert2Bert, Bert2BertConfig, decoder_attention_mask, shift_tokens_right};
use scalegrad_loss::ScaleGradConfig;

/// Sources of 24 tokens and labels of 12 (shorter than the benchmark's 512 / 128 to keep
/// the test fast; the architecture is the full bert-small one).
fn batch(device: &Device) -> (Tensor<2, Int>, Tensor<2, Int>, Tensor<2, Int>) {
    let (b, s, t) = (2, 24, 12);
    let source: Vec<i64> = (0..b * s).map(|i| 1000 + (i as i64 * 37) % 20000).collect();
    let mut mask = vec![1i64; b * s];
    for m in &mut mask[s + 18..] {
        *m = 0; // the second source is padded after 18 tokens
    }
    let mut labels: Vec<i64> = (0..b * t).map(|i| 2000 + (i as i64 * 53) % 20000).collect();
    for l in &mut labels[t + 9..] {
        *l = -100; // the second target is padded after 9 tokens
    }
    (
        Tensor::from_data(TensorData::new(source, [b, s]), device),
        Tensor::from_data(TensorData::new(mask, [b, s]), device),
        Tensor::from_data(TensorData::new(labels, [b, t]), device),
    )
}

fn loss_of(model: &Bert2Bert, device: &Device) -> Tensor<1> {
    let (source, mask, labels) = batch(device);
    let decoder_ids = shift_tokens_right(labels.clone(), 0, 101);
    let decoder_mask = decoder_attention_mask(decoder_ids.clone(), 0);
    let logits = model.forward(source, Some(mask), decoder_ids, Some(decoder_mask));
    ScaleGradConfig::new(1.0)
        .with_ignore_index(Some(-100))
        .init()
        .forward(logits, labels)
}

fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.try_into_vec_as::<f32>().unwrap()
}

#[test]
fn bert_small_architecture_trains_one_step_on_flex() {
    let device = Device::flex().autodiff();
    device.seed(11);
    let model = Bert2BertConfig::bert_small().init(&device);
    let word = |m: &Bert2Bert| {
        values(
            m.decoder
                .embeddings
                .word_embeddings
                .weight
                .val()
                .narrow(0, 2000, 1),
        )
    };
    let query = |m: &Bert2Bert| {
        values(
            m.encoder.layers[0]
                .self_attn
                .attention
                .query
                .weight
                .val()
                .narrow(0, 0, 1),
        )
    };
    let cross = |m: &Bert2Bert| {
        values(
            m.decoder.layers[3]
                .cross_attn
                .attention
                .value
                .weight
                .val()
                .narrow(0, 0, 1),
        )
    };
    let before = (word(&model), query(&model), cross(&model));
    // Dropout is random, so the before/after comparison runs without it.
    let eval = |m: &Bert2Bert| values(loss_of(&m.valid(), &Device::flex()))[0];
    let eval_before = eval(&model);

    let loss = loss_of(&model, &device);
    let first = values(loss.clone())[0];
    assert!(first.is_finite(), "loss {first}");
    // Random weights: roughly ln(30522) = 10.3 nats.
    assert!((5.0..20.0).contains(&first), "loss {first}");

    let grads = GradientsParams::from_grads(loss.backward(), &model);
    let mut optim = AdamWConfig::new().init();
    let model = optim.step(1e-3, model, grads);

    let after = (word(&model), query(&model), cross(&model));
    let moved = |a: &[f32], b: &[f32]| {
        a.iter()
            .zip(b)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0, f32::max)
    };
    assert!(
        moved(&before.0, &after.0) > 1e-4,
        "tied LM-head / word embedding row did not move"
    );
    assert!(
        moved(&before.1, &after.1) > 1e-4,
        "encoder query weights did not move"
    );
    assert!(
        moved(&before.2, &after.2) > 1e-4,
        "decoder cross-attention weights did not move"
    );

    let eval_after = eval(&model);
    assert!(
        eval_after.is_finite() && eval_after < eval_before,
        "loss without dropout {eval_before} -> {eval_after}"
    );
}

#[test]
fn shift_tokens_right_prepends_the_start_token_and_replaces_ignored_labels() {
    let device = Device::flex();
    let labels = Tensor::<2, Int>::from_data([[5, 6, 7, 102], [8, 102, -100, -100]], &device);
    let shifted = shift_tokens_right(labels, 0, 101)
        .try_into_vec_as::<i64>()
        .unwrap();
    assert_eq!(shifted, vec![101, 5, 6, 7, 101, 8, 102, 0]);
    let shifted = Tensor::<2, Int>::from_data(TensorData::new(shifted, [2, 4]), &device);
    let mask = decoder_attention_mask(shifted, 0)
        .try_into_vec_as::<i64>()
        .unwrap();
    assert_eq!(mask, vec![1, 1, 1, 1, 1, 1, 1, 0]);
}
