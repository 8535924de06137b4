#include "client/channel.h"

#include <arpa/inet.h>

#include <chrono>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "client/flags.h"
#include "core/text_file.h"

namespace stave::cli {
namespace {

enum class Family { kNone, kIpv4, kIpv6 };

// "1.2.3.4:80" -> kIpv4, "[::1]:80" -> kIpv6, anything else (a host name, no port) -> kNone.
Family AddressFamily(absl::string_view address) {
  const size_t colon = address.rfind(':');
  if (colon == absl::string_view::npos || colon + 1 == address.size()) return Family::kNone;
  for (char c : address.substr(colon + 1))
    if (c < '0' || c > '9') return Family::kNone;
  absl::string_view host = address.substr(0, colon);
  unsigned char buffer[sizeof(in6_addr)];
  if (absl::ConsumePrefix(&host, "[") && absl::ConsumeSuffix(&host, "]"))
    return inet_pton(AF_INET6, std::string(host).c_str(), buffer) == 1 ? Family::kIpv6
                                                                      : Family::kNone;
  return inet_pton(AF_INET, std::string(host).c_str(), buffer) == 1 ? Family::kIpv4
                                                                   : Family::kNone;
}


}  // namespace

CLI::Option* AddServerFlags(CLI::App* cmd, ChannelOptions& o) {
  auto* server = cmd->add_option(
      "--server", o.server,
      "staved address: HOST:PORT, a list IP:PORT,IP:PORT,... or a gRPC target such as "
      "dns:///stave-headless:50051");
  cmd->add_option("--tls-ca", o.tls_ca, "connect with TLS, trusting the CA certificates in this PEM file");
  cmd->add_option("--lb", o.lb_policy, "load-balancing policy over the server's addresses")
      ->check(CLI::IsMember({"round_robin", "pick_first"}))
      ->capture_default_str();
  cmd->add_option("--timeout", o.timeout_s,
                  "seconds each call to the server may take (a generation: the whole stream)")
      ->check(Positive())
      ->capture_default_str();
  return server;
}

void SetDeadline(grpc::ClientContext& context, double timeout_s) {
  if (timeout_s <= 0) return;
  context.set_deadline(std::chrono::system_clock::now() +
                       std::chrono::duration_cast<std::chrono::system_clock::duration>(
                           std::chrono::duration<double>(timeout_s)));
}

absl::StatusOr<std::string> ChannelTarget(absl::string_view server) {
  if (server.empty()) return absl::InvalidArgumentError("--server: empty address");
  if (!absl::StrContains(server, ',')) return std::string(server);
  // A target with a scheme (ipv4:..., dns:///...) is already the user's own gRPC target.
  for (absl::string_view scheme : {"dns:", "ipv4:", "ipv6:", "unix:", "unix-abstract:", "xds:"})
    if (absl::StartsWith(server, scheme)) return std::string(server);
  if (absl::StrContains(server, "://")) return std::string(server);
  std::vector<absl::string_view> addresses = absl::StrSplit(server, ',', absl::SkipWhitespace());
  Family family = Family::kNone;
  for (absl::string_view address : addresses) {
    address = absl::StripAsciiWhitespace(address);
    const Family f = AddressFamily(address);
    if (f == Family::kNone)
      return absl::InvalidArgumentError(absl::StrCat(
          "--server: '", address, "' in a comma-separated list must be an IP address with a port "
          "(127.0.0.1:5001 or [::1]:5001); for a host name with several addresses use "
          "dns:///NAME:PORT"));
    if (family != Family::kNone && f != family)
      return absl::InvalidArgumentError(
          "--server: a comma-separated list must be all IPv4 or all IPv6 addresses");
    family = f;
  }
  std::string target = family == Family::kIpv4 ? "ipv4:" : "ipv6:";
  for (size_t i = 0; i < addresses.size(); ++i)
    absl::StrAppend(&target, i ? "," : "", absl::StripAsciiWhitespace(addresses[i]));
  return target;
}

absl::StatusOr<std::shared_ptr<grpc::Channel>> OpenChannel(const ChannelOptions& o) {
  auto target = ChannelTarget(o.server);
  if (!target.ok()) return target.status();
  std::shared_ptr<grpc::ChannelCredentials> credentials = grpc::InsecureChannelCredentials();
  if (!o.tls_ca.empty()) {
    auto pem = ReadTextFile(o.tls_ca);
    if (!pem.ok()) return absl::InvalidArgumentError(absl::StrCat("--tls-ca: ", pem.status().message()));
    // gRPC only logs a bad bundle and then fails every call with "empty address list".
    if (!absl::StrContains(*pem, "-----BEGIN CERTIFICATE-----"))
      return absl::InvalidArgumentError(
          absl::StrCat("--tls-ca ", o.tls_ca, ": no PEM certificate in it (-----BEGIN CERTIFICATE-----)"));
    grpc::SslCredentialsOptions ssl;
    ssl.pem_root_certs = *std::move(pem);
    credentials = grpc::SslCredentials(ssl);
  }
  grpc::ChannelArguments args;
  // gRPC's default is pick_first, which sends every call to one replica; round_robin spreads calls
  // over all resolved addresses (a list, or the pods behind a headless service).
  args.SetLoadBalancingPolicyName(o.lb_policy);
  return grpc::CreateCustomChannel(*target, credentials, args);
}

absl::Status FromGrpc(const grpc::Status& status, absl::string_view server, double timeout_s) {
  if (status.ok()) return absl::OkStatus();
  if (status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED && timeout_s > 0)
    return absl::DeadlineExceededError(absl::StrCat(
        server, ": DEADLINE_EXCEEDED: no complete answer within --timeout ", timeout_s,
        " s (a slow or unreachable server, or a generation longer than that: raise --timeout)"));
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()),
                      absl::StrCat(server, ": ", status.error_message()));
}

}  // namespace stave::cli
