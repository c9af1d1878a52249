// Test utility: a real Mosquitto broker on a free loopback port, and the Mosquitto command-line
// clients (mosquitto_pub, mosquitto_sub) as independent peers of the code under test.
//
// Every wait is bounded. Child processes get SIGKILL if the test process dies
// (PR_SET_PDEATHSIG), so a crashed test leaves no broker behind. Not thread-safe: use one
// MosquittoBroker from the test's thread; a MosquittoSubscriber reads its pipe on its own thread.
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

extern char** environ;

namespace edgeinfer::testing_mqtt {

using Clock = std::chrono::steady_clock;
using Millis = std::chrono::milliseconds;

// Polls `done` every 10 ms until it is true or `timeout` passes; returns its last value.
inline bool WaitFor(const std::function<bool()>& done, Millis timeout = Millis(10000)) {
  const auto deadline = Clock::now() + timeout;
  while (!done()) {
    if (Clock::now() >= deadline) return done();
    std::this_thread::sleep_for(Millis(10));
  }
  return true;
}

struct SpawnOptions {
  int stdin_fd = -1;   // -1: /dev/null
  int stdout_fd = -1;  // -1: /dev/null
  int stderr_fd = 2;
  std::vector<std::string> extra_env;  // "NAME=value"
};

// fork + execve. Everything the child needs (the program's path too: execvp is not
// async-signal-safe) is built before fork(): the child of a multi-threaded process may only make
// async-signal-safe calls.
inline pid_t Spawn(const std::vector<std::string>& args, const SpawnOptions& o = {}) {
  std::string path = args.at(0);
  for (const char* dir : {"/usr/bin/", "/usr/sbin/", "/bin/"}) {
    if (path.find('/') == std::string::npos && ::access((dir + args[0]).c_str(), X_OK) == 0) {
      path = dir + args[0];
    }
  }
  std::vector<char*> argv;
  for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  std::vector<char*> envp;
  for (char** e = environ; *e != nullptr; ++e) envp.push_back(*e);
  for (const std::string& e : o.extra_env) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);
  const int null_fd = ::open("/dev/null", O_RDWR | O_CLOEXEC);
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    ::dup2(o.stdin_fd >= 0 ? o.stdin_fd : null_fd, 0);
    ::dup2(o.stdout_fd >= 0 ? o.stdout_fd : null_fd, 1);
    ::dup2(o.stderr_fd >= 0 ? o.stderr_fd : null_fd, 2);
    ::execve(path.c_str(), argv.data(), envp.data());
    ::_exit(127);
  }
  ::close(null_fd);
  return pid;
}

// Waits for `pid` to exit; kills it with SIGKILL at the deadline. Returns the exit status, or
// 128 + signal number, or -1.
inline int WaitExit(pid_t pid, Millis timeout) {
  int status = 0;
  const bool exited = WaitFor([&] { return ::waitpid(pid, &status, WNOHANG) == pid; }, timeout);
  if (!exited) {
    ::kill(pid, SIGKILL);
    if (::waitpid(pid, &status, 0) != pid) return -1;
  }
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

// Runs a command to completion (bounded); returns its exit status.
inline int Run(const std::vector<std::string>& args, Millis timeout = Millis(10000),
               const SpawnOptions& o = {}) {
  const pid_t pid = Spawn(args, o);
  return pid < 0 ? -1 : WaitExit(pid, timeout);
}

inline bool HaveProgram(const std::string& path) { return ::access(path.c_str(), X_OK) == 0; }

// A loopback port nobody listens on right now (the kernel's choice for an ephemeral bind).
inline int FreeLoopbackPort() {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(a);
  int port = -1;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0) {
    port = ntohs(a.sin_port);
  }
  ::close(fd);
  return port;
}

inline bool AcceptsConnections(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  const bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0;
  ::close(fd);
  return ok;
}

inline void MosquittoBrokerAppend(std::vector<std::string>* to,
                                  const std::vector<std::string>& more) {
  to->insert(to->end(), more.begin(), more.end());
}

inline std::string ReadFile(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

inline void WriteFile(const std::filesystem::path& path, const std::string& text) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << text;
}

// A new directory /tmp/edgeinfer-TAG-XXXXXX; an empty path when it cannot be made.
inline std::filesystem::path MakeTempDir(const std::string& tag) {
  std::string tmpl =
      std::filesystem::temp_directory_path().string() + "/edgeinfer-" + tag + "-XXXXXX";
  return ::mkdtemp(tmpl.data()) != nullptr ? std::filesystem::path(tmpl) : std::filesystem::path();
}

// 127.0.0.1:port.
inline sockaddr_in LoopbackAddress(int port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return a;
}

// A TCP connection to 127.0.0.1:port (blocking, close-on-exec); -1 when nothing answers.
inline int ConnectLoopback(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  const sockaddr_in a = LoopbackAddress(port);
  if (fd >= 0 && ::connect(fd, reinterpret_cast<const sockaddr*>(&a), sizeof(a)) == 0) return fd;
  if (fd >= 0) ::close(fd);
  return -1;
}

struct BrokerOptions {
  std::map<std::string, std::string> users;  // non-empty: password_file, no anonymous clients
  bool tls = false;  // a second listener with a certificate for 127.0.0.1 from a test CA
  std::vector<std::string> extra_config;  // lines appended to mosquitto.conf
};

// A self-signed CA (dir/NAME-ca.crt) and, when `server` is set, a server certificate for
// IP 127.0.0.1 signed by it (dir/server.crt, dir/server.key). EC keys: quick to make.
inline bool MakeTestCertificates(const std::filesystem::path& dir, const std::string& name,
                                 bool server) {
  const auto f = [&](const std::string& file) { return (dir / file).string(); };
  const auto quiet = [](const std::vector<std::string>& args) {
    SpawnOptions o;
    o.stderr_fd = -1;  // openssl's progress dots
    return Run(args, Millis(30000), o);
  };
  const std::vector<std::string> ec = {"-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                                       "-nodes"};
  std::vector<std::string> ca = {"openssl", "req", "-x509"};
  MosquittoBrokerAppend(&ca, ec);
  MosquittoBrokerAppend(&ca, {"-keyout", f(name + "-ca.key"), "-out", f(name + "-ca.crt"), "-subj",
                              "/CN=" + name + "-test-ca", "-days", "2"});
  if (quiet(ca) != 0) return false;
  if (!server) return true;
  std::vector<std::string> req = {"openssl", "req"};
  MosquittoBrokerAppend(&req, ec);
  MosquittoBrokerAppend(
      &req, {"-keyout", f("server.key"), "-out", f("server.csr"), "-subj", "/CN=127.0.0.1"});
  WriteFile(dir / "san.cnf", "subjectAltName=IP:127.0.0.1\n");
  return quiet(req) == 0 &&
         quiet({"openssl", "x509", "-req", "-in", f("server.csr"), "-CA", f(name + "-ca.crt"),
                "-CAkey", f(name + "-ca.key"), "-CAcreateserial", "-out", f("server.crt"), "-days",
                "2", "-extfile", f("san.cnf")}) == 0;
}

// /usr/sbin/mosquitto with a generated config in its own temp dir. Start() is explicit so a
// test can have a client try to connect before the broker exists.
class MosquittoBroker {
 public:
  explicit MosquittoBroker(BrokerOptions options = {})
      : options_(std::move(options)),
        port_(FreeLoopbackPort()),
        tls_port_(options_.tls ? FreeLoopbackPort() : -1) {
    std::string tmpl = std::filesystem::temp_directory_path().string() + "/edgeinfer-mqtt-XXXXXX";
    if (::mkdtemp(tmpl.data()) != nullptr) dir_ = tmpl;
    WriteConfig();
  }
  ~MosquittoBroker() {
    Stop();
    std::error_code ec;
    if (!dir_.empty()) std::filesystem::remove_all(dir_, ec);
  }
  MosquittoBroker(const MosquittoBroker&) = delete;
  MosquittoBroker& operator=(const MosquittoBroker&) = delete;

  static bool Available() { return HaveProgram("/usr/sbin/mosquitto"); }

  // Starts the broker and waits (up to 10 s) until the port accepts connections. After a
  // Stop() the port may be in TIME_WAIT; mosquitto sets SO_REUSEADDR, and a failed bind is
  // retried until the deadline anyway.
  bool Start() {
    if (pid_ > 0) return true;
    const auto deadline = Clock::now() + Millis(10000);
    while (Clock::now() < deadline) {
      if (StartOnce(deadline)) return true;
      std::this_thread::sleep_for(Millis(100));
    }
    error_ = "mosquitto did not come up on port " + std::to_string(port_) + ": " + log();
    return false;
  }
  // SIGTERM (mosquitto closes every client connection), bounded, then SIGKILL.
  void Stop() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGTERM);
    WaitExit(pid_, Millis(5000));
    pid_ = -1;
  }
  bool Restart() {
    Stop();
    return Start();
  }

  bool running() const { return pid_ > 0; }
  int port() const { return port_; }
  std::string uri() const { return "tcp://127.0.0.1:" + std::to_string(port_); }
  // With BrokerOptions::tls: the TLS listener and the CA that signed its certificate.
  std::string tls_uri() const { return "ssl://127.0.0.1:" + std::to_string(tls_port_); }
  std::string ca_file() const { return (dir_ / "broker-ca.crt").string(); }
  const std::filesystem::path& dir() const { return dir_; }
  const std::string& error() const { return error_; }
  std::string log() const { return ReadFile(dir_ / "mosquitto.log") + ReadFile(dir_ / "stderr"); }

  // Host, port and (when the broker has users) the first user's credentials.
  std::vector<std::string> ClientArgs() const {
    std::vector<std::string> a = {"-h", "127.0.0.1", "-p", std::to_string(port_)};
    if (!options_.users.empty()) {
      a.insert(a.end(),
               {"-u", options_.users.begin()->first, "-P", options_.users.begin()->second});
    }
    return a;
  }

  // mosquitto_pub -m; true when it exited 0 (QoS 1: after the PUBACK).
  bool Publish(const std::string& topic, const std::string& payload, int qos = 1,
               bool retained = false) const {
    std::vector<std::string> a = {"mosquitto_pub"};
    Append(&a, ClientArgs());
    Append(&a, {"-t", topic, "-m", payload, "-q", std::to_string(qos)});
    if (retained) a.push_back("-r");
    return Run(a) == 0;
  }
  // mosquitto_pub -l: one message per line, all over one connection.
  bool PublishLines(const std::string& topic, const std::vector<std::string>& lines,
                    int qos = 1) const {
    std::string text;
    for (const std::string& l : lines) text += l + "\n";
    const std::filesystem::path file = dir_ / "lines.txt";
    WriteFile(file, text);
    const int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
    std::vector<std::string> a = {"mosquitto_pub"};
    Append(&a, ClientArgs());
    Append(&a, {"-t", topic, "-l", "-q", std::to_string(qos)});
    SpawnOptions o;
    o.stdin_fd = fd;
    const int rc = Run(a, Millis(30000), o);
    ::close(fd);
    return rc == 0;
  }
  // The retained message on `topic` (mosquitto_sub -C 1 -W), or nullopt when there is none.
  std::optional<std::string> Retained(const std::string& topic, int wait_s = 2) const {
    const std::filesystem::path file = dir_ / "retained.txt";
    const int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    std::vector<std::string> a = {"mosquitto_sub"};
    Append(&a, ClientArgs());
    Append(&a, {"-t", topic, "-C", "1", "-W", std::to_string(wait_s), "--retained-only"});
    SpawnOptions o;
    o.stdout_fd = fd;
    const int rc = Run(a, Millis(wait_s * 1000 + 5000), o);
    ::close(fd);
    std::string out = ReadFile(file);
    if (rc != 0 || out.empty()) return std::nullopt;
    if (out.back() == '\n') out.pop_back();
    return out;
  }

  static void Append(std::vector<std::string>* to, const std::vector<std::string>& more) {
    MosquittoBrokerAppend(to, more);
  }

 private:
  void WriteConfig() {
    std::string conf = "listener " + std::to_string(port_) + " 127.0.0.1\n";
    conf += "persistence false\n";
    // A test's burst must not be cut by the broker: by default Mosquitto drops what queues for
    // a lagging subscriber past 1000 messages (QoS 0 included), which a squeezed or loaded
    // agent reaches, and the test would then wait for results that can never come.
    conf += "max_queued_messages 100000\n";
    conf += "log_dest file " + (dir_ / "mosquitto.log").string() + "\n";
    // Run as root, mosquitto would switch to user "mosquitto", which cannot read this dir.
    if (::geteuid() == 0) conf += "user root\n";
    if (options_.users.empty()) {
      conf += "allow_anonymous true\n";
    } else {
      conf += "allow_anonymous false\npassword_file " + (dir_ / "passwd").string() + "\n";
      WritePasswords();
    }
    if (options_.tls && MakeTestCertificates(dir_, "broker", true)) {
      conf += "listener " + std::to_string(tls_port_) + " 127.0.0.1\n";
      conf += "cafile " + ca_file() + "\n";
      conf += "certfile " + (dir_ / "server.crt").string() + "\n";
      conf += "keyfile " + (dir_ / "server.key").string() + "\n";
    }
    for (const std::string& line : options_.extra_config) conf += line + "\n";
    WriteFile(dir_ / "mosquitto.conf", conf);
  }
  void WritePasswords() {
    WriteFile(dir_ / "passwd", "");
    for (const auto& [user, password] : options_.users) {
      Run({"mosquitto_passwd", "-b", (dir_ / "passwd").string(), user, password});
    }
  }
  bool StartOnce(Clock::time_point deadline) {
    const int err =
        ::open((dir_ / "stderr").c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    SpawnOptions o;
    o.stderr_fd = err;
    pid_ = Spawn({"/usr/sbin/mosquitto", "-c", (dir_ / "mosquitto.conf").string()}, o);
    ::close(err);
    int status = 0;
    while (Clock::now() < deadline) {
      if (::waitpid(pid_, &status, WNOHANG) == pid_) break;  // exited: e.g. port not free yet
      if (AcceptsConnections(port_)) return true;
      std::this_thread::sleep_for(Millis(10));
    }
    if (::waitpid(pid_, &status, WNOHANG) == 0) WaitExit(pid_, Millis(0));
    pid_ = -1;
    return false;
  }

  BrokerOptions options_;
  int port_;
  int tls_port_;
  std::filesystem::path dir_;
  pid_t pid_ = -1;
  std::string error_;
};

// mosquitto_sub -d -F 'MSG %t %p' in the background. Message lines ("topic payload") are
// collected by a reader thread; the debug lines tell when the SUBACK has arrived.
class MosquittoSubscriber {
 public:
  MosquittoSubscriber(const MosquittoBroker& broker, const std::string& filter, int qos = 1,
                      std::vector<std::string> extra_args = {}) {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) return;
    // mosquitto_sub flushes after each message but not after its debug lines (the SUBACK):
    // stdbuf makes its stdout line-buffered.
    std::vector<std::string> a = {"mosquitto_sub"};
    if (HaveProgram("/usr/bin/stdbuf")) a = {"stdbuf", "-oL", "mosquitto_sub"};
    MosquittoBroker::Append(&a, broker.ClientArgs());
    MosquittoBroker::Append(&a, {"-d", "-F", "MSG %t %p", "-t", filter, "-q", std::to_string(qos)});
    MosquittoBroker::Append(&a, extra_args);
    SpawnOptions o;
    o.stdout_fd = fds[1];
    pid_ = Spawn(a, o);
    ::close(fds[1]);
    reader_ = std::thread([this, fd = fds[0]] { ReadLines(fd); });
  }
  ~MosquittoSubscriber() {
    if (pid_ > 0) {
      ::kill(pid_, SIGTERM);
      WaitExit(pid_, Millis(5000));
    }
    if (reader_.joinable()) reader_.join();
  }
  MosquittoSubscriber(const MosquittoSubscriber&) = delete;
  MosquittoSubscriber& operator=(const MosquittoSubscriber&) = delete;

  // True once the broker has acknowledged the subscription.
  bool WaitReady(Millis timeout = Millis(10000)) {
    return WaitUntil([this] { return subscribed_; }, timeout);
  }
  bool WaitForCount(size_t n, Millis timeout = Millis(10000)) {
    return WaitUntil([&] { return messages_.size() >= n; }, timeout);
  }
  bool WaitForMessage(const std::string& topic_and_payload, Millis timeout = Millis(10000)) {
    return WaitUntil([&] { return Has(topic_and_payload); }, timeout);
  }
  std::vector<std::string> Messages() {
    std::lock_guard<std::mutex> lock(mu_);
    return messages_;
  }

 private:
  bool Has(const std::string& m) const {
    for (const std::string& x : messages_) {
      if (x == m) return true;
    }
    return false;
  }
  bool WaitUntil(const std::function<bool()>& done, Millis timeout) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, timeout, done);
  }
  void ReadLines(int fd) {
    std::string buf;
    char chunk[4096];
    ssize_t n;
    while ((n = ::read(fd, chunk, sizeof(chunk))) > 0 || (n < 0 && errno == EINTR)) {
      if (n > 0) buf.append(chunk, static_cast<size_t>(n));
      size_t eol;
      while ((eol = buf.find('\n')) != std::string::npos) {
        AddLine(buf.substr(0, eol));
        buf.erase(0, eol + 1);
      }
    }
    ::close(fd);
  }
  void AddLine(const std::string& line) {
    std::lock_guard<std::mutex> lock(mu_);
    if (line.rfind("MSG ", 0) == 0) messages_.push_back(line.substr(4));
    if (line.find("received SUBACK") != std::string::npos) subscribed_ = true;
    cv_.notify_all();
  }

  pid_t pid_ = -1;
  std::thread reader_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::string> messages_;
  bool subscribed_ = false;
};

}  // namespace edgeinfer::testing_mqtt
