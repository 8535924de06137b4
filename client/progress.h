// The progress bar of the long-running commands (train, train-router, eval), on stderr. On a
// terminal it is redrawn in place with '\r'; in a log (stderr redirected) a '\r' would join every
// update into one unreadable line, so there it prints a plain line each time another tenth of
// the work is done (and at the end): at most 11 lines however many steps there are.
#pragma once

#include <cstdio>
#include <string>

namespace stave::cli {

class ProgressBar {
 public:
  // `label` starts every line in a log ("train-router"); `out` is stderr unless a test says.
  explicit ProgressBar(std::string label, std::FILE* out = stderr);

  // `done` of `total` units; `detail` follows the bar (loss, speed, ...).
  void Update(int done, int total, const std::string& detail);
  // A line of its own (an evaluation result) that must not be overwritten by the next update.
  void Note(const std::string& line);

  bool terminal() const { return terminal_; }

 private:
  std::string label_;
  std::FILE* out_;
  bool terminal_;
  bool drawn_ = false;   // a terminal line is open (no newline yet)
  int last_tenth_ = -1;  // in a log: the last tenth printed
};

}  // namespace stave::cli
