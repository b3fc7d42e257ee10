// Certificates for the TLS tests, made with OpenSSL's API at test time: a
// CA, server certificates it signs (for "localhost" and 127.0.0.1, or
// expired), and a client certificate, written as PEM files to a fresh
// directory, removed with them. ECDSA P-256 keys. The benchmark report uses
// the same certificates for its TLS rows.
#pragma once

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <stdlib.h>

#include <cstdio>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <system_error>

namespace fiberloop::testing {

class TestCerts {
 public:
  // Writes ca.pem, server.pem + server.key (localhost, 127.0.0.1),
  // expired.pem + expired.key, client.pem + client.key, and other_ca.pem (a
  // CA that signed nothing here) to a fresh directory.
  TestCerts() {
    const char* base = std::getenv("TEST_TMPDIR");
    dir_ = std::string(base != nullptr ? base : "/tmp") + "/fiberloop_tls_XXXXXX";
    if (::mkdtemp(dir_.data()) == nullptr) throw std::runtime_error("mkdtemp");
    EVP_PKEY* ca_key = make_key();
    X509* ca = make_cert("fiberloop test CA", ca_key, nullptr, ca_key, 0, 3600, true, false);
    write(ca, nullptr, "ca");
    EVP_PKEY* other_key = make_key();
    X509* other = make_cert("another CA", other_key, nullptr, other_key, 0, 3600, true, false);
    write(other, nullptr, "other_ca");
    const struct {
      const char* name;
      long from, to;  // seconds from now
      bool server;
    } leaves[] = {
        {"server", -60, 3600, true}, {"expired", -7200, -3600, true}, {"client", -60, 3600, false}};
    for (const auto& leaf : leaves) {
      EVP_PKEY* key = make_key();
      X509* cert = make_cert(leaf.server ? "localhost" : "fiberloop test client", key, ca, ca_key,
                             leaf.from, leaf.to, false, leaf.server);
      write(cert, key, leaf.name);
      X509_free(cert);
      EVP_PKEY_free(key);
    }
    X509_free(other);
    EVP_PKEY_free(other_key);
    X509_free(ca);
    EVP_PKEY_free(ca_key);
  }

  ~TestCerts() {
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }
  TestCerts(const TestCerts&) = delete;
  TestCerts& operator=(const TestCerts&) = delete;

  // The PEM file "<name>.pem" (a certificate) or "<name>.key".
  std::string cert(const char* name) const { return dir_ + "/" + name + ".pem"; }
  std::string key(const char* name) const { return dir_ + "/" + name + ".key"; }

 private:
  static EVP_PKEY* make_key() {
    EVP_PKEY* key = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256");
    if (key == nullptr) throw std::runtime_error("EVP_PKEY_Q_keygen");
    return key;
  }

  static void add_extension(X509* cert, X509* issuer, int nid, const char* value) {
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, issuer != nullptr ? issuer : cert, cert, nullptr, nullptr, 0);
    X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
    if (ext == nullptr) throw std::runtime_error("X509V3_EXT_conf_nid");
    X509_add_ext(cert, ext, -1);
    X509_EXTENSION_free(ext);
  }

  static X509* make_cert(const char* common_name, EVP_PKEY* key, X509* issuer, EVP_PKEY* issuer_key,
                         long from, long to, bool ca, bool server) {
    static long serial = 1;
    X509* cert = X509_new();
    X509_set_version(cert, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(cert), serial++);
    X509_gmtime_adj(X509_getm_notBefore(cert), from);
    X509_gmtime_adj(X509_getm_notAfter(cert), to);
    X509_set_pubkey(cert, key);
    X509_NAME* name = X509_get_subject_name(cert);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                               reinterpret_cast<const unsigned char*>(common_name), -1, -1, 0);
    X509_set_issuer_name(cert, issuer != nullptr ? X509_get_subject_name(issuer) : name);
    if (ca) {
      add_extension(cert, issuer, NID_basic_constraints, "critical,CA:TRUE");
      add_extension(cert, issuer, NID_key_usage, "critical,keyCertSign,cRLSign");
    } else {
      add_extension(cert, issuer, NID_basic_constraints, "CA:FALSE");
      add_extension(cert, issuer, NID_ext_key_usage, server ? "serverAuth" : "clientAuth");
      if (server) add_extension(cert, issuer, NID_subject_alt_name, "DNS:localhost,IP:127.0.0.1");
    }
    if (X509_sign(cert, issuer_key, EVP_sha256()) == 0) throw std::runtime_error("X509_sign");
    return cert;
  }

  void write(X509* cert, EVP_PKEY* key, const char* name) const {
    FILE* f = std::fopen(this->cert(name).c_str(), "w");
    PEM_write_X509(f, cert);
    std::fclose(f);
    if (key != nullptr) {
      f = std::fopen(this->key(name).c_str(), "w");
      PEM_write_PrivateKey(f, key, nullptr, nullptr, 0, nullptr, nullptr);
      std::fclose(f);
    }
  }

  std::string dir_;
};

}  // namespace fiberloop::testing
