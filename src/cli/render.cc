#include "cli/render.h"

#include <algorithm>
#include <ostream>

namespace sked::cli {

std::string Printable(std::string_view text, bool one_line) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    const auto u = static_cast<unsigned char>(c);
    const bool control = u < 0x20 || u == 0x7f;
    const bool kept = !control || (!one_line && (c == '\n' || c == '\t'));
    if (kept) {
      out += c;
    } else if (c == '\n' || c == '\t') {
      out += c == '\n' ? "\\n" : "\\t";
    } else {
      out += "\\x";
      out += kHex[u >> 4];
      out += kHex[u & 15];
    }
  }
  return out;
}

std::string StateText(const Job& job) {
  std::string text(JobStateName(job.state));
  if (!job.state_reason.empty()) text += " (" + job.state_reason + ")";
  return text;
}

void PrintTable(std::ostream& out, const std::vector<std::string>& header,
                const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> width(header.size(), 0);
  // Cells come from users and commands: no control character reaches the terminal.
  std::vector<std::vector<std::string>> cells;
  cells.reserve(rows.size());
  for (const auto& r : rows) {
    std::vector<std::string> row;
    row.reserve(r.size());
    for (const std::string& cell : r) row.push_back(Printable(cell));
    cells.push_back(std::move(row));
  }
  auto measure = [&](const std::vector<std::string>& row) {
    for (size_t i = 0; i < row.size() && i < width.size(); ++i) {
      width[i] = std::max(width[i], row[i].size());
    }
  };
  measure(header);
  for (const auto& r : cells) measure(r);
  auto print = [&](const std::vector<std::string>& row) {
    std::string line;
    for (size_t i = 0; i < row.size() && i < width.size(); ++i) {
      line += row[i];
      if (i + 1 < row.size()) line += std::string(width[i] - row[i].size() + 2, ' ');
    }
    out << line << "\n";
  };
  print(header);
  for (const auto& r : cells) print(r);
}

std::string ShortTime(const std::optional<Instant>& t) {
  if (!t) return "-";
  std::string s = FormatRfc3339Utc(*t, 0);  // 2026-11-27T16:40:00Z
  if (s.size() > 10) s[10] = ' ';
  return s;
}

std::string RunDuration(const Run& run) {
  if (!run.started_at || !run.finished_at) return "-";
  const double ms =
      std::chrono::duration<double, std::milli>(*run.finished_at - *run.started_at).count();
  char buf[32];
  if (ms < 1000) {
    std::snprintf(buf, sizeof buf, "%.0fms", ms);
  } else {
    std::snprintf(buf, sizeof buf, "%.1fs", ms / 1000);
  }
  return buf;
}

}  // namespace sked::cli
