#include "sources/ldap/ldap_directory.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>

#include "sources/directory.h"
#include "support/slapd_server.h"
#include "util/secrets.h"

namespace enrolsync::sources {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using testsupport::LdifLine;
using testsupport::SchoolLdif;
using testsupport::SharedSlapdServer;
using testsupport::SlapdServer;

const std::string kBase = "dc=school,dc=test";
const std::string kStudents = "ou=Students," + kBase;
const std::string kStaff = "ou=Staff," + kBase;

LdapSettings Settings(const SlapdServer& server, std::vector<std::string> contexts) {
  LdapSettings s;
  s.url = server.url();
  s.bind_dn = server.reader_dn();
  s.bind_password = server.reader_password();
  s.contexts = std::move(contexts);
  s.map = {{"firstname", "givenName"}, {"lastname", "sn"}, {"email", "mail"}, {"idnumber", "employeeNumber"}};
  s.timeout_seconds = 20;
  return s;
}

const DirectoryUser* Find(const DirectoryRead& read, const std::string& username) {
  for (const auto& u : read.users) {
    if (u.username == username) return &u;
  }
  return nullptr;
}

std::string OrgUnit(const std::string& dn) {
  std::string ou = dn.substr(3, dn.find(',') - 3);
  return "dn: " + dn + "\nobjectClass: organizationalUnit\nou: " + ou + "\n\n";
}

std::string Person(const std::string& uid, const std::string& parent, const std::string& sn = "Person") {
  return "dn: uid=" + uid + "," + parent + "\nobjectClass: inetOrgPerson\n" + LdifLine("uid", uid) + "\n" +
         LdifLine("cn", uid) + "\n" + LdifLine("sn", sn) + "\n\n";
}

class LdapDirectoryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto server = SharedSlapdServer();
    ASSERT_TRUE(server) << server.error().message;
    server_ = *server;
  }
  SlapdServer* server_ = nullptr;
};

TEST_F(LdapDirectoryTest, ReadsBothContextsWithAccentsAndApostrophes) {
  auto start = std::chrono::steady_clock::now();
  auto read = ReadDirectory(Settings(*server_, {kStudents, kStaff}));
  ASSERT_TRUE(read) << read.error().message;
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start);
  std::printf("read 890 users in %lld ms\n", static_cast<long long>(ms.count()));

  ASSERT_EQ(read->users.size(), 890u);
  EXPECT_EQ(read->context_counts.at(kStudents), 800);
  EXPECT_EQ(read->context_counts.at(kStaff), 90);
  EXPECT_TRUE(std::is_sorted(read->users.begin(), read->users.end(),
                             [](const auto& a, const auto& b) { return a.username < b.username; }));
  EXPECT_EQ(read->users.front().username, "pupil0001");
  EXPECT_EQ(read->users.back().username, "staff090");

  const DirectoryUser* zoe = Find(*read, "pupil0001");
  ASSERT_NE(zoe, nullptr);
  EXPECT_EQ(zoe->dn, "uid=pupil0001," + kStudents);
  EXPECT_EQ(zoe->context, kStudents);
  EXPECT_EQ(zoe->fields.at("firstname"), "Zoë");
  EXPECT_EQ(zoe->fields.at("lastname"), "O'Brien");
  EXPECT_EQ(zoe->fields.at("email"), "pupil0001@school.test");
  EXPECT_EQ(zoe->fields.at("idnumber"), "P0001");
  EXPECT_FALSE(zoe->disabled);
  EXPECT_EQ(zoe->guid.size(), 36u) << zoe->guid;  // entryUUID

  const DirectoryUser* sian = Find(*read, "pupil0003");
  ASSERT_NE(sian, nullptr);
  EXPECT_EQ(sian->fields.at("firstname"), "Siân");
  EXPECT_EQ(sian->fields.at("lastname"), "Núñez");

  const DirectoryUser* renee = Find(*read, "staff001");
  ASSERT_NE(renee, nullptr);
  EXPECT_EQ(renee->context, kStaff);
  EXPECT_EQ(renee->fields.at("firstname"), "Renée");
  EXPECT_EQ(renee->fields.at("lastname"), "D'Souza");
  EXPECT_EQ(renee->fields.at("idnumber"), "S001");
  EXPECT_NE(renee->guid, zoe->guid);
}

TEST_F(LdapDirectoryTest, PagedResultsReadMoreThanTheServerSizeLimit) {
  // The shared server's size limit is 500; ou=Students holds 800.
  auto settings = Settings(*server_, {kStudents});
  settings.page_size = 0;  // no paging control
  auto unpaged = ReadDirectory(settings);
  ASSERT_FALSE(unpaged);
  EXPECT_EQ(unpaged.error().code, ErrorCode::kSource);
  EXPECT_EQ(unpaged.error().message, "LDAP search of " + kStudents + " failed: Size limit exceeded (4)");

  settings.page_size = 100;
  std::vector<int> pages;
  ldap_internal::ReadHooks hooks;
  hooks.after_page = [&](const std::string&, int page) { pages.push_back(page); };
  auto paged = ldap_internal::ReadDirectoryWithHooks(settings, hooks);
  ASSERT_TRUE(paged) << paged.error().message;
  EXPECT_EQ(paged->users.size(), 800u);
  EXPECT_EQ(paged->context_counts.at(kStudents), 800);
  EXPECT_GE(pages.size(), 8u);

  settings.page_size = 7;  // does not divide the total
  auto odd = ReadDirectory(settings);
  ASSERT_TRUE(odd) << odd.error().message;
  EXPECT_EQ(odd->users.size(), 800u);
}

TEST_F(LdapDirectoryTest, OneLevelDoesNotDescendButSubtreeDoes) {
  const std::string tree = "ou=Tree," + kBase, sub = "ou=Sub," + tree, deeper = "ou=Deeper," + sub;
  ASSERT_TRUE(server_->Add(OrgUnit(tree) + Person("t1", tree) + Person("t2", tree) + OrgUnit(sub) +
                           Person("s1", sub) + Person("s2", sub) + Person("s3", sub) + OrgUnit(deeper) +
                           Person("d1", deeper)));
  auto settings = Settings(*server_, {tree});
  auto one = ReadDirectory(settings);
  ASSERT_TRUE(one) << one.error().message;
  ASSERT_EQ(one->users.size(), 2u);
  EXPECT_EQ(one->users[0].username, "t1");
  EXPECT_EQ(one->users[1].username, "t2");

  settings.search_sub = true;
  auto all = ReadDirectory(settings);
  ASSERT_TRUE(all) << all.error().message;
  std::vector<std::string> names;
  for (const auto& u : all->users) names.push_back(u.username);
  EXPECT_EQ(names, (std::vector<std::string>{"d1", "s1", "s2", "s3", "t1", "t2"}));
  EXPECT_EQ(all->context_counts.at(tree), 6);

  // Overlapping subtree contexts find the same entries twice: refused.
  settings.contexts = {tree, sub};
  auto overlap = ReadDirectory(settings);
  ASSERT_FALSE(overlap);
  EXPECT_EQ(overlap.error().code, ErrorCode::kSource);
  EXPECT_THAT(overlap.error().message, HasSubstr("contexts must not overlap"));
}

TEST_F(LdapDirectoryTest, UnreadableContextFailsTheWholeRead) {
  // A context that does not exist.
  auto missing = ReadDirectory(Settings(*server_, {kStudents, "ou=Nowhere," + kBase}));
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code, ErrorCode::kSource);
  EXPECT_EQ(missing.error().message, "LDAP search of ou=Nowhere," + kBase + " failed: No such object (32)");

  // A context the bind account may not see (ACL "by * none").
  testsupport::SlapdOptions options;
  options.ldif = SchoolLdif(20, 5);
  options.unreadable_subtrees = {kStaff};
  auto own = SlapdServer::Start(options);
  ASSERT_TRUE(own) << own.error().message;
  SlapdServer& server = **own;
  auto hidden = ReadDirectory(Settings(server, {kStudents, kStaff}));
  ASSERT_FALSE(hidden);
  EXPECT_EQ(hidden.error().code, ErrorCode::kSource);
  EXPECT_EQ(hidden.error().message, "LDAP search of " + kStaff + " failed: No such object (32)");

  auto students = ReadDirectory(Settings(server, {kStudents}));
  ASSERT_TRUE(students) << students.error().message;
  EXPECT_EQ(students->users.size(), 20u);

  options.unreadable_subtrees = {};
  ASSERT_TRUE(server.Reconfigure(options));
  auto both = ReadDirectory(Settings(server, {kStudents, kStaff}));
  ASSERT_TRUE(both) << both.error().message;
  EXPECT_EQ(both->users.size(), 25u);
}

TEST_F(LdapDirectoryTest, ServerStoppingMidSearchFailsTheRead) {
  testsupport::SlapdOptions options;
  options.ldif = SchoolLdif(200, 0);
  auto own = SlapdServer::Start(options);
  ASSERT_TRUE(own) << own.error().message;
  SlapdServer& server = **own;

  auto settings = Settings(server, {kStudents});
  settings.page_size = 10;
  int pages = 0;
  ldap_internal::ReadHooks hooks;
  hooks.after_page = [&](const std::string&, int page) {
    pages = page;
    if (page == 1) server.Kill();
  };
  auto read = ldap_internal::ReadDirectoryWithHooks(settings, hooks);
  ASSERT_FALSE(read) << "a read with the server gone returned " << read->users.size() << " users";
  EXPECT_EQ(read.error().code, ErrorCode::kTransient);
  EXPECT_THAT(read.error().message, HasSubstr("LDAP search of " + kStudents + " failed: Can't contact LDAP server (-1)"));
  EXPECT_EQ(pages, 1);

  // Back again: the same read is whole.
  ASSERT_TRUE(server.Restart());
  auto again = ReadDirectory(settings);
  ASSERT_TRUE(again) << again.error().message;
  EXPECT_EQ(again->users.size(), 200u);

  // Down before the read starts.
  server.Stop();
  auto down = ReadDirectory(settings);
  ASSERT_FALSE(down);
  EXPECT_EQ(down.error().code, ErrorCode::kTransient);
  EXPECT_THAT(down.error().message, HasSubstr("Can't contact LDAP server (-1)"));
}

TEST_F(LdapDirectoryTest, WrongBindPasswordIsAClearErrorWithoutThePassword) {
  auto settings = Settings(*server_, {kStudents});
  settings.bind_password = "Wr0ng-Secr3t-Passw0rd";
  auto read = ReadDirectory(settings);
  ASSERT_FALSE(read);
  EXPECT_EQ(read.error().code, ErrorCode::kAuth);
  EXPECT_EQ(read.error().message, "LDAP bind as " + server_->reader_dn() + " to " + server_->url() +
                                      " failed: Invalid credentials (49)");
  EXPECT_THAT(read.error().message, Not(HasSubstr("Wr0ng")));
  EXPECT_EQ(Redact("pw=Wr0ng-Secr3t-Passw0rd"), "pw=[REDACTED]");

  // A DN with no password would be an unauthenticated (anonymous) bind.
  settings.bind_password.clear();
  auto empty = ReadDirectory(settings);
  ASSERT_FALSE(empty);
  EXPECT_EQ(empty.error().code, ErrorCode::kConfig);
}

TEST_F(LdapDirectoryTest, ActiveDirectoryModeReadsSamAccountNameDisabledFlagAndBinaryGuid) {
  const std::string ou = "ou=AD Users," + kBase;
  auto ad_user = [&](const std::string& cn, const std::string& sam, int uac, const std::string& guid_bytes) {
    std::string e = LdifLine("dn", "cn=" + cn + "," + ou) + "\n" +
                    "objectClass: user\n" + LdifLine("cn", cn) + "\n" + LdifLine("sn", cn) + "\n" +
                    LdifLine("givenName", cn) + "\n" + "sAMAccountName: " + sam + "\n" +
                    "userAccountControl: " + std::to_string(uac) + "\n" + "mail: " + sam + "@school.test\n";
    if (!guid_bytes.empty()) e += LdifLine("objectGUID", guid_bytes) + "\n";
    return e + "\n";
  };
  std::string g1, g2;
  for (int i = 0; i < 16; ++i) g1 += static_cast<char>(i);
  const unsigned char raw2[16] = {0xd1, 0xe2, 0x59, 0x4b, 0x27, 0x3f, 0xa1, 0x4c,
                                  0x9e, 0x30, 0xf2, 0x18, 0x00, 0xab, 0xcd, 0xef};
  g2.assign(reinterpret_cast<const char*>(raw2), 16);
  ASSERT_TRUE(server_->Add(OrgUnit(ou) + ad_user("Zoë O'Brien", "ZOBrien", 512, g1) +
                           ad_user("Renée D'Souza", "RDSouza", 514, g2) +
                           ad_user("Left Already", "LAlready", 66050, "") +       // 0x10202: disabled
                           ad_user("Never Expires", "NExpires", 66048, "") +      // 0x10200: enabled
                           Person("notauser", ou)));                              // inetOrgPerson

  LdapSettings settings = Settings(*server_, {ou});
  settings.user_type = "ad";
  settings.user_attribute = "sAMAccountName";
  settings.object_class = "user";
  settings.page_size = 100;
  settings.map = {{"firstname", "givenName"}, {"email", "mail"}};
  auto read = ReadDirectory(settings);
  ASSERT_TRUE(read) << read.error().message;
  ASSERT_EQ(read->users.size(), 4u);

  const DirectoryUser* zoe = Find(*read, "zobrien");
  ASSERT_NE(zoe, nullptr);
  EXPECT_FALSE(zoe->disabled);
  EXPECT_EQ(zoe->guid, "03020100-0504-0706-0809-0a0b0c0d0e0f");
  EXPECT_EQ(zoe->fields.at("firstname"), "Zoë O'Brien");
  EXPECT_EQ(zoe->dn, "cn=Zoë O'Brien," + ou);

  const DirectoryUser* renee = Find(*read, "rdsouza");
  ASSERT_NE(renee, nullptr);
  EXPECT_TRUE(renee->disabled);
  EXPECT_EQ(renee->guid, "4b59e2d1-3f27-4ca1-9e30-f21800abcdef");

  ASSERT_NE(Find(*read, "lalready"), nullptr);
  EXPECT_TRUE(Find(*read, "lalready")->disabled);
  ASSERT_NE(Find(*read, "nexpires"), nullptr);
  EXPECT_FALSE(Find(*read, "nexpires")->disabled);
  EXPECT_EQ(Find(*read, "nexpires")->guid.size(), 36u);  // no objectGUID: entryUUID

  EXPECT_EQ(ldap_internal::FormatObjectGuid("short"), "");
}

TEST_F(LdapDirectoryTest, UsernamesAreLowerCased) {
  const std::string ou = "ou=Case," + kBase;
  ASSERT_TRUE(server_->Add(OrgUnit(ou) + Person("Mixed.Case", ou) + Person("ÉLODIE.ÇA", ou) +
                           Person("UPPER", ou)));
  auto read = ReadDirectory(Settings(*server_, {ou}));
  ASSERT_TRUE(read) << read.error().message;
  std::vector<std::string> names;
  for (const auto& u : read->users) names.push_back(u.username);
  EXPECT_EQ(names, (std::vector<std::string>{"mixed.case", "upper", "élodie.ça"}));

  using ldap_internal::LowerUsername;
  EXPECT_EQ(LowerUsername("ÀÉÎÕÜÞ×ŁŚŻŸ"), "àéîõüþ×łśżÿ");
  EXPECT_EQ(LowerUsername("ΑΒΓΔ ΆΈ АБВЯ ЁЂ"), "αβγδ άέ абвя ёђ");
  EXPECT_EQ(LowerUsername("Nguyễn"), "nguyễn");  // three-byte characters kept
  EXPECT_EQ(LowerUsername(std::string("A\xC3", 2)), std::string("a\xC3", 2));

  // Two entries that lower-case to one username: refused, naming both.
  const std::string ou2 = "ou=Case2," + kBase;
  ASSERT_TRUE(server_->Add(OrgUnit(ou2) + Person("mixed.CASE", ou2)));
  auto dup = ReadDirectory(Settings(*server_, {ou, ou2}));
  ASSERT_FALSE(dup);
  EXPECT_EQ(dup.error().code, ErrorCode::kSource);
  EXPECT_EQ(dup.error().message, "username mixed.case appears in two entries: uid=Mixed.Case," + ou +
                                     ", uid=mixed.CASE," + ou2);
}

TEST_F(LdapDirectoryTest, FilterValuesAreEscapedPerRfc4515) {
  EXPECT_EQ(EscapeLdapFilterValue("a*b(c)d\\e"), "a\\2ab\\28c\\29d\\5ce");
  EXPECT_EQ(EscapeLdapFilterValue(std::string("x\0y", 3)), "x\\00y");
  EXPECT_EQ(EscapeLdapFilterValue("Zoë"), "Zo\\c3\\ab");
  EXPECT_EQ(EscapeLdapFilterValue("O'Brien-Smith, J. =1"), "O'Brien-Smith, J. =1");

  LdapSettings s;
  EXPECT_EQ(UserFilter(s), "(&(objectClass=inetOrgPerson)(uid=*))");
  s.user_attribute = "sAMAccountName";
  s.object_class = "user";
  EXPECT_EQ(UserFilter(s), "(&(objectClass=user)(sAMAccountName=*))");
  s.object_class = "(&(objectCategory=person)(objectClass=user))";
  EXPECT_EQ(UserFilter(s), "(&(objectCategory=person)(objectClass=user))");

  // Against the server: an escaped '*' matches only the literal star.
  const std::string ou = "ou=Escape," + kBase;
  ASSERT_TRUE(server_->Add(OrgUnit(ou) + Person("star", ou, "Star*Name") + Person("starx", ou, "StarXName") +
                           Person("paren", ou, "Paren(1)\\") + Person("zoe", ou, "Zoë")));
  auto settings = Settings(*server_, {ou});
  auto only = [&](const std::string& sn) -> std::vector<std::string> {
    settings.object_class = "(&(objectClass=inetOrgPerson)(sn=" + EscapeLdapFilterValue(sn) + "))";
    auto read = ReadDirectory(settings);
    EXPECT_TRUE(read) << read.error().message;
    std::vector<std::string> names;
    if (read) {
      for (const auto& u : read->users) names.push_back(u.username);
    }
    return names;
  };
  EXPECT_EQ(only("Star*Name"), std::vector<std::string>{"star"});
  EXPECT_EQ(only("Paren(1)\\"), std::vector<std::string>{"paren"});
  EXPECT_EQ(only("Zoë"), std::vector<std::string>{"zoe"});
}

TEST_F(LdapDirectoryTest, SeveralUrlsAreTriedInOrderAndNoServerIsTransient) {
  auto settings = Settings(*server_, {kStaff});
  settings.url = "ldap://127.0.0.1:1 " + server_->url();
  auto read = ReadDirectory(settings);
  ASSERT_TRUE(read) << read.error().message;
  EXPECT_EQ(read->users.size(), 90u);

  settings.url = "ldap://127.0.0.1:1";
  auto none = ReadDirectory(settings);
  ASSERT_FALSE(none);
  EXPECT_EQ(none.error().code, ErrorCode::kTransient);
  EXPECT_THAT(none.error().message,
              HasSubstr("LDAP bind as " + server_->reader_dn() + " to ldap://127.0.0.1:1 failed: Can't contact LDAP server (-1)"));

  settings.url = "http://127.0.0.1/";
  auto bad = ReadDirectory(settings);
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code, ErrorCode::kConfig);
  EXPECT_THAT(bad.error().message, HasSubstr("invalid LDAP url \"http://127.0.0.1/\""));
}

TEST_F(LdapDirectoryTest, StartTlsWithoutTrustedCertificateIsRefused) {
  testsupport::SlapdOptions options;
  options.ldif = SchoolLdif(3, 2);
  options.tls = true;
  auto own = SlapdServer::Start(options);
  ASSERT_TRUE(own) << own.error().message;
  SlapdServer& server = **own;

  auto settings = Settings(server, {kStudents});
  settings.start_tls = true;  // system CAs only: the test CA is not trusted
  auto refused = ReadDirectory(settings);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code, ErrorCode::kSource);
  EXPECT_THAT(refused.error().message, HasSubstr("LDAP StartTLS to " + server.url() + " failed"));
  std::printf("%s\n", refused.error().message.c_str());

  settings.ca_file = server.ca_file();
  auto trusted = ReadDirectory(settings);
  ASSERT_TRUE(trusted) << trusted.error().message;
  EXPECT_EQ(trusted->users.size(), 3u);

  // ldaps:// likewise.
  auto ldaps = Settings(server, {kStaff});
  ldaps.url = server.ldaps_url();
  auto untrusted = ReadDirectory(ldaps);
  ASSERT_FALSE(untrusted);
  EXPECT_EQ(untrusted.error().code, ErrorCode::kSource) << untrusted.error().message;
  std::printf("%s\n", untrusted.error().message.c_str());
  ldaps.ca_file = server.ca_file();
  auto ok = ReadDirectory(ldaps);
  ASSERT_TRUE(ok) << ok.error().message;
  EXPECT_EQ(ok->users.size(), 2u);

  // A trusted CA but a certificate for another host: refused.
  options.tls_cert_for_other_host = true;
  auto other = SlapdServer::Start(options);
  ASSERT_TRUE(other) << other.error().message;
  auto wrong_host = Settings(**other, {kStudents});
  wrong_host.start_tls = true;
  wrong_host.ca_file = (*other)->ca_file();
  auto mismatch = ReadDirectory(wrong_host);
  ASSERT_FALSE(mismatch);
  EXPECT_EQ(mismatch.error().code, ErrorCode::kSource);
  EXPECT_THAT(mismatch.error().message, HasSubstr("the TLS handshake failed"));
  std::printf("%s\n", mismatch.error().message.c_str());

  // A CA file that is not there.
  settings.ca_file = server.dir() + "/no-such-ca.pem";
  auto no_ca = ReadDirectory(settings);
  ASSERT_FALSE(no_ca);
  EXPECT_EQ(no_ca.error().code, ErrorCode::kConfig);
  EXPECT_THAT(no_ca.error().message, HasSubstr("no-such-ca.pem"));
  std::printf("%s\n", no_ca.error().message.c_str());

  // A server without TLS cannot do StartTLS; nothing falls back to plain text.
  auto plain = Settings(*server_, {kStaff});
  plain.start_tls = true;
  plain.ca_file = server.ca_file();
  auto no_tls = ReadDirectory(plain);
  ASSERT_FALSE(no_tls);
  EXPECT_EQ(no_tls.error().code, ErrorCode::kSource);
  EXPECT_THAT(no_tls.error().message, HasSubstr("LDAP StartTLS to " + server_->url() + " failed"));
  std::printf("%s\n", no_tls.error().message.c_str());
}

}  // namespace
}  // namespace enrolsync::sources
