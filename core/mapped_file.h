// A read-only memory mapping of a whole file (RAII). Checkpoints are read through this rather than
// copied into buffers: the kernel pages weights in on demand.
#pragma once

#include <cstddef>
#include <memory>
#include <string>

#include "absl/status/statusor.h"

namespace stave {

class MappedFile {
 public:
  static absl::StatusOr<std::shared_ptr<const MappedFile>> Open(const std::string& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const unsigned char* data() const { return data_; }
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }
  // Drops the mapping's resident pages (they are clean file pages; what is used again faults back
  // in from the page cache). After a loader copied what it reorders, the copies' sources stop
  // counting in the process's RSS.
  void DropResidentPages() const;

 private:
  MappedFile(std::string path, const unsigned char* data, size_t size)
      : path_(std::move(path)), data_(data), size_(size) {}
  std::string path_;
  const unsigned char* data_;
  size_t size_;
};

}  // namespace stave
