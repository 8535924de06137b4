#include "client/progress.h"

#include <unistd.h>

#include <algorithm>

namespace stave::cli {

ProgressBar::ProgressBar(std::string label, std::FILE* out)
    : label_(std::move(label)), out_(out), terminal_(isatty(fileno(out)) != 0) {}

void ProgressBar::Update(int done, int total, const std::string& detail) {
  if (total <= 0) return;
  done = std::clamp(done, 0, total);
  if (terminal_) {
    constexpr int kWidth = 30;
    const int filled = kWidth * done / total;
    // \x1b[K clears what a longer previous line left behind.
    std::fprintf(out_, "\r[%s%s] %s\x1b[K", std::string(filled, '#').c_str(),
                 std::string(kWidth - filled, '.').c_str(), detail.c_str());
    drawn_ = done < total;
    if (!drawn_) std::fputc('\n', out_);
  } else {
    const int tenth = 10 * done / total;
    if (tenth <= last_tenth_) return;
    last_tenth_ = tenth;
    std::fprintf(out_, "%s: %3d%% %s\n", label_.c_str(), 100 * done / total, detail.c_str());
  }
  std::fflush(out_);
}

void ProgressBar::Note(const std::string& line) {
  if (terminal_ && drawn_) std::fputc('\n', out_);
  drawn_ = false;
  std::fprintf(out_, "%s\n", line.c_str());
  std::fflush(out_);
}

}  // namespace stave::cli
