// Core's finish reason (a word: core/sequence.h) as the wire enum GenerateResponse.finish.
#pragma once

#include <string_view>

#include "stave/v1/stave.pb.h"

namespace stave {

inline v1::FinishReason FinishReasonToProto(std::string_view reason) {
  if (reason == "length") return v1::FINISH_REASON_LENGTH;
  if (reason == "stop") return v1::FINISH_REASON_STOP;
  if (reason == "eos") return v1::FINISH_REASON_EOS;
  if (reason == "cancelled") return v1::FINISH_REASON_CANCELLED;
  if (reason == "error") return v1::FINISH_REASON_ERROR;
  return v1::FINISH_REASON_UNSPECIFIED;
}

}  // namespace stave
