//! One module per subcommand. Every command checks its flags and its output location before
//! any work and follows `par_app`'s exit-status rule (2 = bad input, 1 = failure at run time).

pub mod convert;
pub mod decode;
pub mod devices;
pub mod entropy;
pub mod eval;
pub mod generate;
pub mod model;
pub mod model_info;
pub mod order;
pub mod sample;
pub mod sampling;
pub mod score;
pub mod tokenize;
pub mod tokenize_clips;
pub mod tokenizer_info;
pub mod tokenizer_train;
