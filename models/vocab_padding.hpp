// The vocabulary size Megatron allocates: the tokenizer's size padded so that every tensor-parallel
// rank holds an equal slice of the embedding and output layers that is a multiple of 128 rows.
#pragma once

#include <cstdint>

namespace foldplan {

// Megatron training/vocab_utils.py: ceil(V / (divisible_by·TP)) · divisible_by·TP, where
// divisible_by is --make-vocab-size-divisible-by (default 128).
std::int64_t padded_vocab_size(std::int64_t vocab_size, std::int64_t tensor_parallel_size,
                               std::int64_t divisible_by = 128);

} // namespace foldplan
