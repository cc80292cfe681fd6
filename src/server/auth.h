// API bearer tokens: roles, minting, and checking a presented token.
//
// A token reads "sked_<id>_<secret>": <id> names its row in the store, the
// secret is 32 random bytes in hex. Only SHA-256(secret) is stored; a
// presented token is checked by looking its row up by id and comparing the
// hashes in constant time, so neither the store's contents nor the time a
// check takes tell anyone a valid secret. Revocation takes effect on the
// next request, on every instance of a fleet (the row is read each time).

#ifndef SKED_SERVER_AUTH_H_
#define SKED_SERVER_AUTH_H_

#include <optional>
#include <string>
#include <string_view>

#include "sked/status.h"
#include "sked/store.h"

namespace sked::server {

// viewer: read; operator: + trigger, pause, resume, cancel; admin: + create,
// update, delete jobs and manage tokens.
enum class Role { kViewer = 0, kOperator = 1, kAdmin = 2 };
std::string_view RoleName(Role role);
// INVALID_ARGUMENT naming the roles for anything else.
Result<Role> ParseRole(std::string_view name);

struct MintedToken {
  ApiToken stored;     // as the store holds it (hash only)
  std::string secret;  // the whole "sked_<id>_<secret>" string, shown once
};

// Creates a token named `name` (1-64 letters, digits, '.', '_', '-') with
// `role`, stores its hash and returns the token text, which is not kept
// anywhere. ALREADY_EXISTS when a live token has that name.
Result<MintedToken> MintToken(Store& store, std::string_view name, Role role,
                              std::string_view created_by, Instant now);

// The hex SHA-256 of `text`.
std::string Sha256Hex(std::string_view text);

// Checks an Authorization header value ("Bearer sked_..."): the principal,
// or why not (missing, malformed, unknown or wrong, revoked, store down), with
// a message that never repeats the token.
struct Principal {
  std::string name;
  Role role = Role::kViewer;
};
enum class AuthFailure { kNone, kMissing, kMalformed, kInvalid, kRevoked, kStoreDown };
struct AuthResult {
  std::optional<Principal> principal;
  AuthFailure failure = AuthFailure::kNone;
  std::string message;
};
AuthResult Authenticate(Store& store, std::string_view authorization_header);

}  // namespace sked::server

#endif  // SKED_SERVER_AUTH_H_
