// The dashboard's files, compiled into the binary at build time
// (cmake/embed_files.cmake): HTML, CSS, the app's JavaScript modules and
// Debian's Chart.js. Nothing is fetched from outside.

#ifndef SKED_SERVER_UI_ASSETS_H_
#define SKED_SERVER_UI_ASSETS_H_

#include <cstddef>
#include <span>
#include <string_view>

namespace sked::server {

struct UiAsset {
  std::string_view path;          // "/ui/app.js"
  std::string_view content_type;  // "text/javascript; charset=utf-8"
  const unsigned char* data;
  std::size_t size;
  std::string_view etag;  // "\"<16 hex of SHA-256>\""
};

std::span<const UiAsset> UiAssets();

}  // namespace sked::server

#endif  // SKED_SERVER_UI_ASSETS_H_
