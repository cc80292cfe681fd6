#include "server/auth.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <array>
#include <cctype>
#include <charconv>

namespace sked::server {
namespace {

constexpr std::array<std::string_view, 3> kRoleNames = {"viewer", "operator", "admin"};
constexpr std::string_view kPrefix = "sked_";
constexpr size_t kSecretBytes = 32;

std::string Hex(const unsigned char* data, size_t n) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(n * 2);
  for (size_t i = 0; i < n; ++i) {
    out += kDigits[data[i] >> 4];
    out += kDigits[data[i] & 15];
  }
  return out;
}

}  // namespace

std::string_view RoleName(Role role) { return kRoleNames[static_cast<size_t>(role)]; }

Result<Role> ParseRole(std::string_view name) {
  for (size_t i = 0; i < kRoleNames.size(); ++i) {
    if (kRoleNames[i] == name) return static_cast<Role>(i);
  }
  return InvalidArgumentError("role: must be viewer, operator or admin, got '" + std::string(name) +
                              "'");
}

std::string Sha256Hex(std::string_view text) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  EVP_Digest(text.data(), text.size(), digest, &size, EVP_sha256(), nullptr);
  return Hex(digest, size);
}

Result<MintedToken> MintToken(Store& store, std::string_view name, Role role,
                              std::string_view created_by, Instant now) {
  if (name.empty() || name.size() > 64)
    return InvalidArgumentError("name: must be 1-64 characters");
  for (char c : name) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '_' && c != '-') {
      return InvalidArgumentError("name: may hold only letters, digits, '.', '_' and '-'");
    }
  }
  std::array<unsigned char, kSecretBytes> raw{};
  if (RAND_bytes(raw.data(), static_cast<int>(raw.size())) != 1) {
    return InternalError("the system's random number generator failed");
  }
  const std::string secret = Hex(raw.data(), raw.size());
  ApiToken token;
  token.name = std::string(name);
  token.role = std::string(RoleName(role));
  token.secret_hash = Sha256Hex(secret);
  token.created_by = std::string(created_by);
  token.created_at = now;
  SKED_ASSIGN_OR_RETURN(ApiToken stored, store.CreateToken(token));
  return MintedToken{stored, std::string(kPrefix) + std::to_string(stored.id) + "_" + secret};
}

AuthResult Authenticate(Store& store, std::string_view header) {
  AuthResult out;
  if (header.empty()) {
    out.failure = AuthFailure::kMissing;
    out.message = "this endpoint needs a bearer token (Authorization: Bearer <token>)";
    return out;
  }
  constexpr std::string_view kBearer = "Bearer ";
  auto malformed = [&] {
    out.failure = AuthFailure::kMalformed;
    out.message = "the Authorization header must be 'Bearer sked_<id>_<secret>'";
    return out;
  };
  if (header.size() <= kBearer.size() || header.substr(0, kBearer.size()) != kBearer) {
    return malformed();
  }
  std::string_view token = header.substr(kBearer.size());
  if (token.substr(0, kPrefix.size()) != kPrefix) return malformed();
  token.remove_prefix(kPrefix.size());
  const size_t sep = token.find('_');
  if (sep == std::string_view::npos || sep == 0 || sep > 18) return malformed();
  std::int64_t id = 0;
  const auto [end, ec] = std::from_chars(token.data(), token.data() + sep, id);
  if (ec != std::errc() || end != token.data() + sep || id <= 0) return malformed();
  const std::string_view secret = token.substr(sep + 1);
  if (secret.size() != kSecretBytes * 2) return malformed();
  for (char c : secret) {
    if (!std::isxdigit(static_cast<unsigned char>(c))) return malformed();
  }
  auto stored = store.GetToken(id);
  // The hash is computed and compared whatever the lookup found, so an
  // unknown id costs what a wrong secret does.
  const std::string presented = Sha256Hex(secret);
  const std::string expected =
      stored.ok() ? stored->secret_hash : std::string(presented.size(), '\0');
  const bool same = expected.size() == presented.size() &&
                    CRYPTO_memcmp(expected.data(), presented.data(), presented.size()) == 0;
  if (!stored.ok() && stored.status().code() != StatusCode::kNotFound) {
    out.failure = AuthFailure::kStoreDown;
    out.message = "tokens cannot be checked: the store is unavailable";
    return out;
  }
  if (!stored.ok() || !same) {
    out.failure = AuthFailure::kInvalid;
    out.message = "the token is not valid";
    return out;
  }
  if (stored->revoked_at) {
    out.failure = AuthFailure::kRevoked;
    out.message = "the token was revoked";
    return out;
  }
  auto role = ParseRole(stored->role);
  if (!role.ok()) {
    out.failure = AuthFailure::kInvalid;
    out.message = "the token's role is unknown";
    return out;
  }
  out.principal = Principal{stored->name, *role};
  return out;
}

}  // namespace sked::server
