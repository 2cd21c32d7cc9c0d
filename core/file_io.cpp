#include "core/file_io.hpp"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <fcntl.h>
#include <unistd.h>

#include <fmt/format.h>

#include "core/errors.hpp"

namespace foldplan {

std::string read_text_file(const std::string& path) {
  std::error_code error;
  if (std::filesystem::is_directory(path, error)) {
    throw InputError(path, "is a directory, not a file");
  }
  std::ifstream in(path, std::ios::binary);
  if (!in)
    throw InputError(path, fmt::format("cannot open file: {}", std::strerror(errno)));
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad())
    throw InputError(path, "cannot read file");
  return text.str();
}

nlohmann::json parse_json(const std::string& text, const std::string& source) {
  try {
    return nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& error) {
    // A syntax error (parse_error) or a number too large for a double (out_of_range.406,
    // "1e400"). nlohmann's message is "[json.exception.parse_error.101] parse error at line 1,
    // column 2: …"; keep the part after the tag.
    std::string message = error.what();
    const auto tag_end = message.find("] ");
    if (tag_end != std::string::npos)
      message = message.substr(tag_end + 2);
    throw InputError(source, fmt::format("malformed JSON: {}", message));
  }
}

nlohmann::json read_json_file(const std::string& path) {
  return parse_json(read_text_file(path), path);
}

void write_file_atomically(const std::string& path, const std::string& contents) {
  const std::filesystem::path target(path);
  const std::filesystem::path directory =
      target.has_parent_path() ? target.parent_path() : std::filesystem::path(".");
  const std::string temporary =
      (directory / fmt::format(".{}.tmp.{}", target.filename().string(), ::getpid())).string();

  const int fd = ::open(temporary.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    throw InputError(path, fmt::format("cannot write output: {}", std::strerror(errno)));
  }
  std::size_t written = 0;
  while (written < contents.size()) {
    const ssize_t n = ::write(fd, contents.data() + written, contents.size() - written);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      const int saved = errno;
      ::close(fd);
      ::unlink(temporary.c_str());
      throw InputError(path, fmt::format("cannot write output: {}", std::strerror(saved)));
    }
    written += static_cast<std::size_t>(n);
  }
  if (::fsync(fd) != 0 || ::close(fd) != 0) {
    const int saved = errno;
    ::unlink(temporary.c_str());
    throw InputError(path, fmt::format("cannot write output: {}", std::strerror(saved)));
  }
  if (std::rename(temporary.c_str(), path.c_str()) != 0) {
    const int saved = errno;
    ::unlink(temporary.c_str());
    throw InputError(path, fmt::format("cannot write output: {}", std::strerror(saved)));
  }
}

} // namespace foldplan
