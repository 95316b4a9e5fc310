//! ScaleGrad must train: the loss is differentiable end to end through a model, and an
//! optimiser step with gamma < 1 moves the parameters differently than MLE does. (The
//! Python attempt this project replaces detached its loss and trained nothing.)

use burn::module::Module;
use burn::nn::{Embedding, EmbeddingConfig, Linear, LinearConfig};
use burn::optim::{AdamWConfig, GradientsParams};
use burn::tensor::{Device, Int, Tensor, TensorData};
use scalegrad_loss::{ObjectiveConfig, ScaleGradConfig};

/// A bigram language model: embedding then a projection back to the vocabulary.
#[derive(Module, Debug)]
struct Bigram {
    embed: Embedding,
    project: Linear,
}

impl Bigram {
    fn new(vocab: usize, hidden: usize, device: &Device) -> Self {
        Self {
            embed: EmbeddingConfig::new(vocab, hidden).init(device),
            project: LinearConfig::new(hidden, vocab).init(device),
        }
    }

    fn forward(&self, tokens: Tensor<2, Int>) -> Tensor<3> {
        self.project.forward(self.embed.forward(tokens))
    }
}

const VOCAB: usize = 12;

/// Inputs and next-token targets with repeats, so ScaleGrad has context sets to act on.
fn batch(device: &Device) -> (Tensor<2, Int>, Tensor<2, Int>) {
    let stream: Vec<i64> = vec![1, 2, 3, 2, 3, 4, 5, 3, 2, 6, 7, 2, 3, 8, 2, 9, 1];
    let inputs = stream[..16].to_vec();
    let targets = stream[1..].to_vec();
    (
        Tensor::from_data(TensorData::new(inputs, [2, 8]), device),
        Tensor::from_data(TensorData::new(targets, [2, 8]), device),
    )
}

fn flat(model: &Bigram) -> Vec<f32> {
    let mut out = model
        .embed
        .weight
        .val()
        .into_data()
        .try_to_vec::<f32>()
        .unwrap();
    out.extend(
        model
            .project
            .weight
            .val()
            .into_data()
            .try_to_vec::<f32>()
            .unwrap(),
    );
    out
}

/// One AdamW step (lr 1e-2) from the same initial model under `objective`.
fn one_step(model: Bigram, objective: &ObjectiveConfig, device: &Device) -> Bigram {
    let loss = objective.init(None).unwrap();
    let (inputs, targets) = batch(device);
    let value = loss.forward(model.forward(inputs), targets);
    let grads = GradientsParams::from_grads(value.backward(), &model);
    let mut optim = AdamWConfig::new().init();
    optim.step(1e-2, model, grads)
}

#[test]
fn one_adamw_step_with_scalegrad_moves_parameters_differently_than_mle() {
    let device = Device::flex().autodiff();
    device.seed(7);
    let initial = Bigram::new(VOCAB, 8, &device);
    let before = flat(&initial);

    let sg = flat(&one_step(
        initial.clone(),
        &ObjectiveConfig::ScaleGrad { gamma: 0.2 },
        &device,
    ));
    let mle = flat(&one_step(initial.clone(), &ObjectiveConfig::Mle, &device));

    let moved = |after: &[f32]| {
        before
            .iter()
            .zip(after)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max)
    };
    assert!(
        moved(&sg) > 1e-3,
        "ScaleGrad step moved parameters by at most {}",
        moved(&sg)
    );
    assert!(
        moved(&mle) > 1e-3,
        "MLE step moved parameters by at most {}",
        moved(&mle)
    );
    let apart = sg
        .iter()
        .zip(&mle)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    assert!(
        apart > 1e-4,
        "ScaleGrad and MLE steps agree to {apart}: gamma had no effect"
    );
}

/// The gradient with respect to the model parameters (not only the logits) depends on
/// gamma, and its direction raises the probability of novel targets: after a few steps
/// of ScaleGrad the model puts more mass on tokens that have not occurred yet.
#[test]
fn scalegrad_training_shifts_mass_towards_novel_tokens() {
    let device = Device::flex().autodiff();
    device.seed(11);
    let initial = Bigram::new(VOCAB, 8, &device);
    let train = |objective: ObjectiveConfig| {
        let loss = objective.init(None).unwrap();
        let mut model = initial.clone();
        let mut optim = AdamWConfig::new().init();
        for _ in 0..30 {
            let (inputs, targets) = batch(&device);
            let value = loss.forward(model.forward(inputs), targets);
            let grads = GradientsParams::from_grads(value.backward(), &model);
            model = optim.step(5e-2, model, grads);
        }
        model
    };
    let novel_mass = |model: &Bigram| {
        // Mean probability that the plain model assigns to each position's novel tokens.
        let (inputs, targets) = batch(&device);
        let probs = burn::tensor::activation::softmax(model.forward(inputs), 2);
        let novel = scalegrad_loss::novel_mask(targets, VOCAB, None).float();
        let mass = (probs * novel).sum_dim(2).mean();
        mass.into_data().try_to_vec::<f32>().unwrap()[0]
    };
    let sg = novel_mass(&train(ObjectiveConfig::ScaleGrad { gamma: 0.2 }));
    let mle = novel_mass(&train(ObjectiveConfig::Mle));
    assert!(
        sg > mle + 0.01,
        "novel-token mass after training: ScaleGrad={sg}, MLE={mle}"
    );
}

/// The loss tensor a user calls `backward` on is tracked whenever the logits are.
#[test]
fn loss_stays_in_the_autodiff_graph() {
    let device = Device::flex().autodiff();
    let logits = Tensor::<3>::ones([1, 4, 6], &device).require_grad();
    let targets =
        Tensor::<2, Int>::from_data(TensorData::new(vec![1i64, 1, 2, 1], [1, 4]), &device);
    let loss = ScaleGradConfig::new(0.2)
        .init()
        .forward(logits.clone(), targets);
    assert!(loss.is_tracked(), "loss detached from the graph");
    let grads = loss.backward();
    let grad = logits.grad(&grads).expect("gradient reaches the logits");
    let norm: f32 = grad.abs().sum().into_data().try_to_vec::<f32>().unwrap()[0];
    assert!(norm > 0.1, "gradient norm {norm}");
}
