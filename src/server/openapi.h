// The OpenAPI 3 document of the REST API (src/server/openapi.json, built into
// the binary), served at /api/v1/openapi.json.

#ifndef SKED_SERVER_OPENAPI_H_
#define SKED_SERVER_OPENAPI_H_

#include <string_view>

namespace sked::server {

std::string_view OpenApiDocument();

}  // namespace sked::server

#endif  // SKED_SERVER_OPENAPI_H_
