// Megatron's vocabulary padding.
#include "models/vocab_padding.hpp"

#include <cassert>

namespace foldplan {

std::int64_t padded_vocab_size(std::int64_t vocab_size, std::int64_t tensor_parallel_size,
                               std::int64_t divisible_by) {
  assert(vocab_size > 0 && tensor_parallel_size > 0 && divisible_by > 0);
  const std::int64_t multiple = divisible_by * tensor_parallel_size;
  return (vocab_size + multiple - 1) / multiple * multiple;
}

} // namespace foldplan
