//! Training and evaluation loops for the ScaleGrad experiments (work in progress).

pub mod checkpoint;
pub mod config;
pub mod optim;
pub mod schedule;
