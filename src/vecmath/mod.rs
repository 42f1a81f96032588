//! Vectorized math (tanh, sigmoid, exp) with runtime dispatch.
