// A fresh directory under $TMPDIR (or /tmp) for one test, removed with everything in it when
// the object goes away.
#ifndef FIELDSYNC_TESTS_TESTING_TEMP_DIR_H_
#define FIELDSYNC_TESTS_TESTING_TEMP_DIR_H_

#include <string>

namespace fieldsync::testing {

class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }
  // path() + "/" + name.
  std::string File(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

}  // namespace fieldsync::testing

#endif  // FIELDSYNC_TESTS_TESTING_TEMP_DIR_H_
