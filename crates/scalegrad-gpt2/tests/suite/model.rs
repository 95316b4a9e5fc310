//! Model properties that do not need transformers: size, training behaviour, tying.

use crate::common;

use burn::module::Module;
use burn::optim::{AdamWConfig, GradientsParams};
use burn::tensor::{Device, Int, Tensor, TensorData};
use common::*;
use scalegrad_gpt2::{Gpt2Config, shift_for_next_token};
use scalegrad_loss::ScaleGradConfig;

/// distilgpt2: 6 x 768 with 12 heads, vocab 50257, 1024 positions, tied head.
const DISTILGPT2_PARAMS: usize = 81_912_576;

#[test]
fn distilgpt2_architecture_has_81_9m_parameters_and_trains_on_flex() {
    let config = Gpt2Config::distilgpt2();
    assert_eq!(config.num_params(), DISTILGPT2_PARAMS);
    let device = Device::flex().autodiff();
    device.seed(0);
    let model = config.init(&device);
    assert_eq!(
        model.num_params(),
        DISTILGPT2_PARAMS,
        "the tied LM head adds no parameter"
    );

    let ids: Vec<i64> = (0..16).map(|i| (i * 7919) % 50257).collect();
    let ids = Tensor::<2, Int>::from_data(TensorData::new(ids, [1, 16]), &device);
    let logits = model.forward(ids.clone(), None);
    assert_eq!(logits.dims(), [1, 16, 50257]);
    let (logits, targets) = shift_for_next_token(logits, ids);
    let loss = ScaleGradConfig::new(1.0).init().forward(logits, targets);
    let value = loss.clone().into_scalar::<f32>();
    // Random weights with std 0.02: the loss is close to ln(50257) = 10.8.
    assert!((value - 50257f32.ln()).abs() < 0.5, "initial loss {value}");
    let grads = loss.backward();
    let grad = model.blocks[5]
        .mlp
        .fc
        .weight
        .val()
        .grad(&grads)
        .expect("a gradient");
    let norm = grad.abs().sum().into_scalar::<f32>();
    assert!(
        norm.is_finite() && norm > 0.0,
        "gradient of the last MLP: {norm}"
    );
}

/// burn's dropout acts only on autodiff devices with the training flag on.
#[test]
fn dropout_is_active_only_in_training() {
    let ids: Vec<i64> = (0..12).collect();
    let config = Gpt2Config::tiny(50).with_dropout(0.5);
    let autodiff = Device::flex().autodiff();
    autodiff.seed(1);
    let model = config.init(&autodiff);
    let input = |device: &Device| {
        Tensor::<2, Int>::from_data(TensorData::new(ids.clone(), [1, 12]), device)
    };

    let a = to_vec(model.forward(input(&autodiff), None).detach());
    let b = to_vec(model.forward(input(&autodiff), None).detach());
    assert_ne!(a, b, "training forward passes drop different units");

    let eval = model.valid();
    let plain = Device::flex();
    let c = to_vec(eval.forward(input(&plain), None));
    let d = to_vec(eval.forward(input(&plain), None));
    assert_eq!(c, d, "inference is deterministic");
    let without_dropout = Gpt2Config::tiny(50).init(&plain);
    assert_eq!(without_dropout.blocks[0].attn.attn_dropout.prob, 0.0);
}

/// The LM head is `wte` itself: its gradient reaches rows of tokens that never occur in
/// the input (through the head), and an optimiser step moves them.
#[test]
fn the_tied_lm_head_trains_the_token_embedding() {
    let device = Device::flex().autodiff();
    device.seed(2);
    let model = Gpt2Config::tiny(40).init(&device);
    let ids =
        Tensor::<2, Int>::from_data(TensorData::new(vec![1i64, 2, 1, 2, 1, 2], [1, 6]), &device);
    let (logits, targets) = shift_for_next_token(model.forward(ids.clone(), None), ids);
    let loss = ScaleGradConfig::new(1.0).init().forward(logits, targets);
    let grads = loss.backward();
    let wte = model.token_embedding.weight.val();
    let grad = wte.grad(&grads).expect("wte gradient");
    let unseen_row = grad.slice([30..31, 0..64]).abs().sum().into_scalar::<f32>();
    assert!(
        unseen_row > 0.0,
        "token 30 is never input; only the head can give it a gradient"
    );

    let before = wte.clone().slice([30..31, 0..64]).into_data();
    let grads = GradientsParams::from_grads(grads, &model);
    let mut optim = AdamWConfig::new().init();
    let model = optim.step(1e-2, model, grads);
    let after = model
        .token_embedding
        .weight
        .val()
        .slice([30..31, 0..64])
        .into_data();
    assert_ne!(before, after, "the step updates the shared embedding");
}

#[test]
fn an_all_ones_attention_mask_changes_nothing() {
    let model = load("tiny-gpt2");
    let device = Device::flex();
    let ids = vec![u32s(&expected("tiny-gpt2")["single"]["input_ids"])];
    let ones = vec![vec![1u32; ids[0].len()]];
    let plain = to_vec(model.forward(ids_tensor(&ids, &device), None));
    let masked = to_vec(model.forward(ids_tensor(&ids, &device), Some(ids_tensor(&ones, &device))));
    assert_close("mask of ones vs no mask", &masked, &plain, 1e-5);
}

/// The explicit attention (used while attention dropout is active) equals the fused
/// one: with dropout probabilities of zero except attention's, a frozen-flag model on
/// an autodiff device takes the fused path; compare against the explicit path by
/// running the autodiff model with `attn_pdrop` tiny enough to never drop.
#[test]
fn explicit_and_fused_attention_agree() {
    let device = Device::flex().autodiff();
    device.seed(3);
    let config = Gpt2Config::tiny(60);
    let fused = config.init(&device);
    let mut explicit = fused.clone();
    for block in &mut explicit.blocks {
        // A probability so small that no unit is dropped (1e-12 per unit), but non-zero,
        // so the explicit path runs.
        block.attn.attn_dropout.prob = 1e-12;
    }
    let ids: Vec<i64> = (0..20).map(|i| (i * 13) % 60).collect();
    let mask: Vec<i64> = (0..20).map(|i| i64::from(i >= 3)).collect();
    let ids = Tensor::<2, Int>::from_data(TensorData::new(ids, [1, 20]), &device);
    let mask = Tensor::<2, Int>::from_data(TensorData::new(mask, [1, 20]), &device);
    for mask in [None, Some(mask)] {
        let a = to_vec(fused.forward(ids.clone(), mask.clone()).detach());
        let b = to_vec(explicit.forward(ids.clone(), mask.clone()).detach());
        // Compare real positions only (the first three are padding in the masked case).
        assert_close(
            "explicit vs fused attention",
            &b[3 * 60..],
            &a[3 * 60..],
            1e-5,
        );
    }
}

/// A training step under every execution policy: the same loss and the same gradients
/// (the fused policy's bias and LayerNorm rows, written-out LayerNorms, kernel-ending
/// reshapes and row-shaped embeddings included), for a batch of two rows without an
/// attention mask, whose position ids are broadcast over the rows.
#[test]
fn every_execution_policy_gives_the_same_loss_and_gradients() {
    use scalegrad_ops::Execution;
    let device = Device::flex().autodiff();
    device.seed(4);
    // Non-trivial LayerNorm parameters and biases, so that a lost one shows.
    let base = Gpt2Config::tiny(50).init(&device).map(&mut Perturb);
    let ids: Vec<i64> = (0..24).map(|i| (i * 7 + 3) % 50).collect();
    let ids = Tensor::<2, Int>::from_data(TensorData::new(ids, [2, 12]), &device);
    let step = |execution: Execution| {
        let model = base.clone().with_execution(execution);
        let (logits, targets) = shift_for_next_token(model.forward(ids.clone(), None), ids.clone());
        let loss = ScaleGradConfig::new(1.0).init().forward(logits, targets);
        let grads = loss.backward();
        let block = &model.blocks[1];
        let values = |data: TensorData| data.try_to_vec::<f32>().expect("f32 values");
        let grad = |t: Tensor<1>| values(t.grad(&grads).expect("a gradient").into_data());
        let grad2 = |t: Tensor<2>| values(t.grad(&grads).expect("a gradient").into_data());
        (
            values(loss.detach().into_data()),
            [
                grad(block.ln_1.gamma.val()),
                grad(block.ln_2.beta.as_ref().expect("a shift").val()),
                grad(block.attn.proj.bias.as_ref().expect("a bias").val()),
                grad(model.ln_f.beta.as_ref().expect("a shift").val()),
                grad2(block.mlp.fc.weight.val()),
                grad2(model.token_embedding.weight.val()),
                grad2(model.position_embedding.weight.val()),
            ],
        )
    };
    let (loss, grads) = step(Execution::Host);
    for execution in [Execution::Device, Execution::Fused] {
        let (other_loss, other_grads) = step(execution);
        assert_close(&format!("loss, {execution}"), &other_loss, &loss, 1e-5);
        for (i, (a, b)) in other_grads.iter().zip(&grads).enumerate() {
            assert_close(&format!("gradient {i}, {execution}"), a, b, 1e-5);
        }
    }
}

/// Adds a different value to every element of every float parameter (scales, shifts
/// and biases start at 1 and 0).
struct Perturb;

impl burn::module::ModuleMapper for Perturb {
    fn map_float<const D: usize>(
        &mut self,
        param: burn::module::Param<Tensor<D>>,
    ) -> burn::module::Param<Tensor<D>> {
        param.map(|t| {
            let shift = Tensor::random(
                t.shape(),
                burn::tensor::Distribution::Uniform(-0.2, 0.2),
                &t.device(),
            );
            // A new leaf that records its gradient, as a loaded parameter does.
            (t + shift).detach().require_grad()
        })
    }
}
