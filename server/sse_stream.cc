#include "server/sse_stream.h"

#include <httplib.h>

#include "absl/strings/str_cat.h"

namespace stave::server {

using Clock = std::chrono::steady_clock;

void SseStream::Count(absl::StatusCode code) {
  if (record.finished()) return;
  for (const auto& c : choices) record.generated_tokens += c.completion_tokens;
  const auto timing = run->timing();
  record.queue_seconds = timing.queue_seconds;
  if (timing.first_token.has_value()) record.ttft_seconds = SecondsBetween(record.arrived, *timing.first_token);
  // The status line went out with the first event: 200 whatever happened next.
  record.Finish(*metrics, code, 200);
}

SseStream::~SseStream() {
  // Every way out counts the request; one httplib never reported ended with the connection.
  if (run != nullptr && metrics != nullptr) Count(absl::StatusCode::kCancelled);
  run.reset();  // cancels whatever is still running
  --*running;
}

namespace {

bool Send(httplib::DataSink& sink, const std::string& event) { return sink.write(event.data(), event.size()); }

}  // namespace

bool WriteEvents(SseStream& s, httplib::DataSink& sink) {
  auto events = s.run->Wait(std::chrono::milliseconds(200));
  if (events.empty()) {
    if (s.stopping->load()) s.run->Cancel();  // staved is stopping: the run ends with "cancelled"
    // A comment line now and then: the only way to notice a client that left while nothing is
    // produced (a long prefill, a full queue); a write to a closed connection fails.
    if (Clock::now() - s.last_write > std::chrono::seconds(1)) {
      s.last_write = Clock::now();
      if (!Send(sink, ": keep-alive\n\n")) {
        s.run->Cancel();
        s.Count(absl::StatusCode::kCancelled);
        return false;
      }
    }
    return true;
  }
  for (const auto& e : events) {
    ChoiceState& c = s.choices[e.index];
    if (e.step.finished) s.record.finish_reasons[e.index] = e.step.finish_reason;
    absl::Status status = AddStep(*s.model, s.header.logprobs, e.step, c);
    std::string out;
    if (!status.ok()) {
      // The answer has begun (status 200 is sent): the failure goes as an error event.
      s.run->Cancel();
      s.record.error = std::string(status.message());
      s.Count(status.code());
      Send(sink, absl::StrCat("data: ", Dump(ErrorJson(status)), "\n\n"));
      sink.done();
      return false;
    }
    // Held-back text (a possible stop string, a split character) makes steps without text; they
    // are sent only when they carry tokens the client asked to see, or end the choice.
    const bool worth = !c.pending.text.empty() || c.finished || !c.pending.tokens.empty() || !c.first_sent;
    if (!worth) continue;
    out = absl::StrCat("data: ", Dump(ChunkJson(s.header, e.index, c.pending, !c.first_sent)), "\n\n");
    c.first_sent = true;
    c.pending = ChoiceResult();
    s.last_write = Clock::now();
    if (!Send(sink, out)) {
      s.run->Cancel();
      s.Count(absl::StatusCode::kCancelled);
      return false;
    }
  }
  if (!s.run->done()) return true;
  uint32_t completion_tokens = 0;
  for (const auto& c : s.choices) completion_tokens += c.completion_tokens;
  std::string tail;
  if (s.include_usage)
    tail = absl::StrCat("data: ",
                        Dump(UsageChunkJson(s.header, s.record.prompt_tokens.value_or(0), completion_tokens,
                                            s.record.config_version.value_or(0))),
                        "\n\n");
  tail += "data: [DONE]\n\n";
  const bool sent = Send(sink, tail);
  s.Count(sent ? absl::StatusCode::kOk : absl::StatusCode::kCancelled);
  if (sent) sink.done();
  return sent;
}

}  // namespace stave::server
