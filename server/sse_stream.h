// A streamed answer ("stream": true) as server-sent events: each engine step of each choice
// becomes a `data: {chunk}` event as soon as it has text (or tokens the client asked to see), the
// end is `data: [DONE]` (after a usage chunk when asked), a failure after the answer began is a
// `data: {"error": ...}` event. A client that left is noticed by a failed write (a keep-alive
// comment goes out every second while nothing else does), and its run is cancelled at once.
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <vector>

#include "core/model.h"
#include "server/completion_run.h"
#include "server/metrics.h"
#include "server/openai_json.h"
#include "server/request_record.h"

namespace httplib {
class DataSink;
}

namespace stave::server {

// Everything httplib's chunked content provider needs across its calls (one per request).
struct SseStream {
  std::unique_ptr<CompletionRun> run;
  const Model* model = nullptr;
  Metrics* metrics = nullptr;
  const std::atomic<bool>* stopping = nullptr;
  std::atomic<int>* running = nullptr;
  RequestRecord record;  // route, request id, prompt tokens, config version: set by the handler
  AnswerHeader header;
  std::vector<ChoiceState> choices;
  bool include_usage = false;
  std::chrono::steady_clock::time_point last_write = std::chrono::steady_clock::now();

  // Finishes the record once (log line and metrics) with the request's outcome.
  void Count(absl::StatusCode code);
  ~SseStream();
};

// One call of the chunked content provider: waits up to 200 ms for steps and writes them as
// events. false ends the response (the client is gone, or a failure was reported).
bool WriteEvents(SseStream& stream, httplib::DataSink& sink);

}  // namespace stave::server
