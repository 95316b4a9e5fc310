//! Training and evaluation for the ScaleGrad experiments: run configs, one training loop
//! for GPT-2 and BERT2BERT with exact resume, and the evaluation that writes
//! `metrics.json`. See the README for the life of a run.

pub mod checkpoint;
pub mod config;
pub mod device_failure;
pub mod log;
pub mod loss_scale;
pub mod open_ended;
pub mod optim;
pub mod run;
pub mod schedule;
pub mod summarization;
pub mod task;
pub mod trainer;
