//! Training and evaluation loops for the ScaleGrad experiments (work in progress).

pub mod checkpoint;
pub mod config;
pub mod log;
pub mod open_ended;
pub mod optim;
pub mod run;
pub mod schedule;
pub mod summarization;
pub mod trainer;
