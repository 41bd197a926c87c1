/*
 * The JNI calls libhdfs lacks, in the JVM libhdfs started:
 *  - directory listings that stream: Hadoop's FileSystem.listStatusIterator(Path), where libhdfs's
 *    hdfsListDirectory holds the whole directory (as Java objects, then as a C array). For HDFS the
 *    iterator is a DirListingIterator: one NameNode call per dfs.ls.limit entries (1000 by default), so
 *    the memory of a listing does not depend on the directory's size;
 *  - the JVM's heap limit (Runtime.maxMemory), which the gateway checks its configuration against;
 *  - initializing classes ahead of their first use (see hdfsftpd_initialize_classes);
 *  - a file's checksum (FileSystem.getFileChecksum), which `hdfs dfs -checksum` prints.
 *
 * It runs in the JVM libhdfs started and follows libhdfs's own discipline, using two functions of the
 * vendored libhdfs 3.3 (jni_helper.c, exception.c; linked statically into the same binary):
 *  - getJNIEnv(): the calling thread's JNIEnv, attached to the JVM by libhdfs (JNI_GetCreatedJavaVMs +
 *    AttachCurrentThread) and detached by libhdfs when the thread ends, as for every libhdfs call;
 *  - printExceptionAndFree(): turns a Java exception into an errno and records its root cause and stack
 *    trace where hdfsGetLastExceptionRootCause() reads them, as every libhdfs call does on failure.
 * So a failure here reads exactly like a failure of libhdfs itself on the Rust side.
 *
 * Every call runs inside a local frame (PushLocalFrame/PopLocalFrame): no local reference outlives it.
 */

#include <errno.h>
#include <jni.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* From libhdfs 3.3 (jni_helper.h, exception.h, hdfs.h). */
JNIEnv *getJNIEnv(void);
int printExceptionAndFree(JNIEnv *env, jthrowable exc, int noPrintFlags, const char *fmt, ...);
#define NOPRINT_EXC_FILE_NOT_FOUND 0x01
#define NOPRINT_EXC_ACCESS_CONTROL 0x02
#define NOPRINT_EXC_UNRESOLVED_LINK 0x04
#define EINTERNAL 255

/* One listed entry; the strings are malloc'd and freed by hdfsftpd_entry_free. */
struct hdfsftpd_entry {
    int32_t is_dir;
    int16_t replication;
    int16_t permissions;
    int64_t size;
    int64_t modified_ms;
    char *name;
    char *owner;
    char *group;
};

struct hdfsftpd_listing {
    jobject iterator; /* global reference to the RemoteIterator<FileStatus> */
};

/* Classes (global references, so the method IDs stay valid) and methods, looked up once. */
static struct {
    jclass path, file_system, remote_iterator, file_status, permission;
    jmethodID path_new, path_get_name, list_status_iterator, has_next, next;
    jmethodID get_path, is_directory, get_len, get_modification_time, get_replication, get_owner, get_group,
        get_permission, to_short;
} J;
static int java_ready;
static pthread_mutex_t java_lock = PTHREAD_MUTEX_INITIALIZER;

/* The frame capacity a call needs: every local reference one entry makes, with room to spare. */
#define FRAME 16
/* Exceptions HDFS answers routinely (a missing or forbidden directory) are not printed to stderr. */
#define QUIET (NOPRINT_EXC_FILE_NOT_FOUND | NOPRINT_EXC_ACCESS_CONTROL | NOPRINT_EXC_UNRESOLVED_LINK)

/* Records the pending Java exception (errno, root cause) as libhdfs does; -1. */
static int failed(JNIEnv *env, const char *call, const char *path)
{
    jthrowable exc = (*env)->ExceptionOccurred(env);
    if (!exc) {
        errno = EINTERNAL;
        return -1;
    }
    (*env)->ExceptionClear(env);
    errno = printExceptionAndFree(env, exc, QUIET, "%s(%s)", call, path);
    return -1;
}

static jclass global_class(JNIEnv *env, const char *name)
{
    jclass local = (*env)->FindClass(env, name);
    if (!local)
        return NULL;
    jclass global = (*env)->NewGlobalRef(env, local);
    (*env)->DeleteLocalRef(env, local);
    return global;
}

static int look_up_java(JNIEnv *env)
{
    if ((J.path = global_class(env, "org/apache/hadoop/fs/Path")) == NULL
        || (J.file_system = global_class(env, "org/apache/hadoop/fs/FileSystem")) == NULL
        || (J.remote_iterator = global_class(env, "org/apache/hadoop/fs/RemoteIterator")) == NULL
        || (J.file_status = global_class(env, "org/apache/hadoop/fs/FileStatus")) == NULL
        || (J.permission = global_class(env, "org/apache/hadoop/fs/permission/FsPermission")) == NULL)
        return -1;
#define METHOD(field, class, name, signature) \
    if ((J.field = (*env)->GetMethodID(env, J.class, name, signature)) == NULL) \
        return -1;
    METHOD(path_new, path, "<init>", "(Ljava/lang/String;)V");
    METHOD(path_get_name, path, "getName", "()Ljava/lang/String;");
    METHOD(list_status_iterator, file_system, "listStatusIterator",
           "(Lorg/apache/hadoop/fs/Path;)Lorg/apache/hadoop/fs/RemoteIterator;");
    METHOD(has_next, remote_iterator, "hasNext", "()Z");
    METHOD(next, remote_iterator, "next", "()Ljava/lang/Object;");
    METHOD(get_path, file_status, "getPath", "()Lorg/apache/hadoop/fs/Path;");
    METHOD(is_directory, file_status, "isDirectory", "()Z");
    METHOD(get_len, file_status, "getLen", "()J");
    METHOD(get_modification_time, file_status, "getModificationTime", "()J");
    METHOD(get_replication, file_status, "getReplication", "()S");
    METHOD(get_owner, file_status, "getOwner", "()Ljava/lang/String;");
    METHOD(get_group, file_status, "getGroup", "()Ljava/lang/String;");
    METHOD(get_permission, file_status, "getPermission", "()Lorg/apache/hadoop/fs/permission/FsPermission;");
    METHOD(to_short, permission, "toShort", "()S");
#undef METHOD
    return 0;
}

/* This thread's JNIEnv with the classes and methods looked up; NULL with errno set otherwise. */
static JNIEnv *java(const char *path)
{
    JNIEnv *env = getJNIEnv();
    if (!env) {
        errno = EINTERNAL;
        return NULL;
    }
    if (__atomic_load_n(&java_ready, __ATOMIC_ACQUIRE))
        return env;
    pthread_mutex_lock(&java_lock);
    int rc = java_ready ? 0 : look_up_java(env);
    __atomic_store_n(&java_ready, rc == 0, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&java_lock);
    if (rc) {
        failed(env, "hdfsftpd listing: looking up Hadoop's classes", path);
        return NULL;
    }
    return env;
}

/* java(), with a local frame of CAPACITY references pushed for the caller to pop: NULL with errno set
 * (and the cause recorded) when either fails. */
static JNIEnv *java_in_frame(const char *path, jint capacity)
{
    JNIEnv *env = java(path);
    if (env && (*env)->PushLocalFrame(env, capacity) != 0) {
        failed(env, "PushLocalFrame", path);
        return NULL;
    }
    return env;
}

/* A malloc'd copy of a Java string (modified UTF-8, as libhdfs gives names); NULL on failure. */
static char *c_string(JNIEnv *env, jstring text)
{
    if (!text)
        return strdup("");
    const char *chars = (*env)->GetStringUTFChars(env, text, NULL);
    if (!chars)
        return NULL;
    char *copy = strdup(chars);
    (*env)->ReleaseStringUTFChars(env, text, chars);
    return copy;
}

/* Starts listing PATH of the FileSystem FS (libhdfs's hdfsFS, a global reference to the Java object). The
 * first batch is fetched now, so a missing or forbidden directory fails here. NULL with errno set (and the
 * Java root cause recorded) on failure. */
struct hdfsftpd_listing *hdfsftpd_list_open(jobject fs, const char *path)
{
    JNIEnv *env = java_in_frame(path, FRAME);
    if (!env)
        return NULL;
    struct hdfsftpd_listing *listing = NULL;
    jstring text = (*env)->NewStringUTF(env, path);
    jobject jpath = text ? (*env)->NewObject(env, J.path, J.path_new, text) : NULL;
    jobject iterator = jpath ? (*env)->CallObjectMethod(env, fs, J.list_status_iterator, jpath) : NULL;
    if (!iterator || (*env)->ExceptionCheck(env)) {
        failed(env, "FileSystem#listStatusIterator", path);
    } else if ((listing = malloc(sizeof *listing)) == NULL) {
        errno = ENOMEM;
    } else if ((listing->iterator = (*env)->NewGlobalRef(env, iterator)) == NULL) {
        free(listing);
        listing = NULL;
        failed(env, "NewGlobalRef", path);
    }
    (*env)->PopLocalFrame(env, NULL);
    return listing;
}

/* Copies one FileStatus into ENTRY (its name only, not the full URI); -1 with the exception pending. */
static int copy_status(JNIEnv *env, jobject status, struct hdfsftpd_entry *entry)
{
    memset(entry, 0, sizeof *entry);
    jobject jpath = (*env)->CallObjectMethod(env, status, J.get_path);
    jobject name = jpath ? (*env)->CallObjectMethod(env, jpath, J.path_get_name) : NULL;
    jobject owner = name ? (*env)->CallObjectMethod(env, status, J.get_owner) : NULL;
    jobject group = owner ? (*env)->CallObjectMethod(env, status, J.get_group) : NULL;
    jobject permission = group ? (*env)->CallObjectMethod(env, status, J.get_permission) : NULL;
    if (!permission || (*env)->ExceptionCheck(env))
        return -1;
    entry->is_dir = (*env)->CallBooleanMethod(env, status, J.is_directory);
    entry->size = (*env)->CallLongMethod(env, status, J.get_len);
    entry->modified_ms = (*env)->CallLongMethod(env, status, J.get_modification_time);
    entry->replication = (*env)->CallShortMethod(env, status, J.get_replication);
    entry->permissions = (*env)->CallShortMethod(env, permission, J.to_short);
    if ((*env)->ExceptionCheck(env))
        return -1;
    entry->name = c_string(env, name);
    entry->owner = c_string(env, owner);
    entry->group = c_string(env, group);
    if (!entry->name || !entry->owner || !entry->group)
        return -1;
    return 0;
}

void hdfsftpd_entry_free(struct hdfsftpd_entry *entry)
{
    free(entry->name);
    free(entry->owner);
    free(entry->group);
    memset(entry, 0, sizeof *entry);
}

/* The next entry into ENTRY: 1, or 0 at the end; -1 with errno set (and the Java root cause recorded) on
 * failure. A NameNode call is made every dfs.ls.limit entries. PATH is for the error message. */
int hdfsftpd_list_next(struct hdfsftpd_listing *listing, const char *path, struct hdfsftpd_entry *entry)
{
    JNIEnv *env = java_in_frame(path, FRAME);
    if (!env)
        return -1;
    int rc = 0;
    jboolean more = (*env)->CallBooleanMethod(env, listing->iterator, J.has_next);
    if ((*env)->ExceptionCheck(env)) {
        rc = failed(env, "RemoteIterator#hasNext", path);
    } else if (more) {
        jobject status = (*env)->CallObjectMethod(env, listing->iterator, J.next);
        if (!status || copy_status(env, status, entry) != 0) {
            hdfsftpd_entry_free(entry);
            rc = (*env)->ExceptionCheck(env) ? failed(env, "RemoteIterator#next", path) : (errno = ENOMEM, -1);
        } else {
            rc = 1;
        }
    }
    (*env)->PopLocalFrame(env, NULL);
    return rc;
}

void hdfsftpd_list_close(struct hdfsftpd_listing *listing)
{
    JNIEnv *env = getJNIEnv();
    if (env)
        (*env)->DeleteGlobalRef(env, listing->iterator);
    free(listing);
}

/* Runtime.getRuntime().maxMemory(): the heap the JVM may grow to (-Xmx), in bytes; -1 with errno set. */
int64_t hdfsftpd_jvm_max_heap(void)
{
    JNIEnv *env = java_in_frame("(JVM)", FRAME);
    if (!env)
        return -1;
    int64_t bytes = -1;
    jclass runtime = (*env)->FindClass(env, "java/lang/Runtime");
    jmethodID get_runtime =
        runtime ? (*env)->GetStaticMethodID(env, runtime, "getRuntime", "()Ljava/lang/Runtime;") : NULL;
    jmethodID max_memory = get_runtime ? (*env)->GetMethodID(env, runtime, "maxMemory", "()J") : NULL;
    jobject current = max_memory ? (*env)->CallStaticObjectMethod(env, runtime, get_runtime) : NULL;
    if (current)
        bytes = (*env)->CallLongMethod(env, current, max_memory);
    if (!current || (*env)->ExceptionCheck(env))
        bytes = failed(env, "Runtime#maxMemory", "(JVM)");
    (*env)->PopLocalFrame(env, NULL);
    return bytes;
}

/* FileSystem.getFileChecksum(PATH), as `hdfs dfs -checksum` prints it: the algorithm's name and the
 * checksum's getLength() bytes in lower-case hex, malloc'd into *ALGORITHM and *HEX (both left NULL when
 * the filesystem keeps no checksum, as file:/// does). 0, or -1 with errno set (and the Java root cause
 * recorded). */
int hdfsftpd_file_checksum(jobject fs, const char *path, char **algorithm, char **hex)
{
    *algorithm = *hex = NULL;
    JNIEnv *env = java_in_frame(path, FRAME);
    if (!env)
        return -1;
    int rc = 0;
    jclass checksum_class = (*env)->FindClass(env, "org/apache/hadoop/fs/FileChecksum");
    jmethodID get_checksum = checksum_class ? (*env)->GetMethodID(env, J.file_system, "getFileChecksum",
        "(Lorg/apache/hadoop/fs/Path;)Lorg/apache/hadoop/fs/FileChecksum;") : NULL;
    jmethodID get_name =
        get_checksum ? (*env)->GetMethodID(env, checksum_class, "getAlgorithmName", "()Ljava/lang/String;") : NULL;
    jmethodID get_bytes = get_name ? (*env)->GetMethodID(env, checksum_class, "getBytes", "()[B") : NULL;
    jmethodID get_length = get_bytes ? (*env)->GetMethodID(env, checksum_class, "getLength", "()I") : NULL;
    jstring text = get_length ? (*env)->NewStringUTF(env, path) : NULL;
    jobject jpath = text ? (*env)->NewObject(env, J.path, J.path_new, text) : NULL;
    jobject checksum = jpath ? (*env)->CallObjectMethod(env, fs, get_checksum, jpath) : NULL;
    if (!jpath || (*env)->ExceptionCheck(env)) {
        rc = failed(env, "FileSystem#getFileChecksum", path);
    } else if (checksum) {
        jstring name = (*env)->CallObjectMethod(env, checksum, get_name);
        jbyteArray bytes = name ? (*env)->CallObjectMethod(env, checksum, get_bytes) : NULL;
        jint length = bytes ? (*env)->CallIntMethod(env, checksum, get_length) : 0;
        jbyte *raw = bytes && !(*env)->ExceptionCheck(env) ? (*env)->GetByteArrayElements(env, bytes, NULL) : NULL;
        if (!raw) {
            rc = failed(env, "FileChecksum#getBytes", path);
        } else {
            jsize available = (*env)->GetArrayLength(env, bytes);
            length = length < 0 || length > available ? available : length;
            *algorithm = c_string(env, name);
            *hex = malloc(2 * (size_t)length + 1);
            if (!*algorithm || !*hex) {
                free(*algorithm);
                free(*hex);
                *algorithm = *hex = NULL;
                errno = ENOMEM;
                rc = -1;
            } else {
                for (jint i = 0; i < length; i++)
                    snprintf(*hex + 2 * i, 3, "%02x", (unsigned char)raw[i]);
                (*hex)[2 * length] = '\0';
            }
            (*env)->ReleaseByteArrayElements(env, bytes, raw, JNI_ABORT);
        }
    }
    (*env)->PopLocalFrame(env, NULL);
    return rc;
}

/* Initializes the class NAME (a/b/C, FindClass initializes) and every class nested in it, and theirs. A
 * class whose static initializer fails (an OutOfMemoryError while another session filled the heap) can
 * never be used again in this JVM: initialized at start, it cannot fail later. Returns how many classes
 * were initialized, or -1 with errno set (and the Java root cause recorded). */
static int initialize_tree(JNIEnv *env, const char *name, jmethodID get_declared, jmethodID get_name)
{
    if ((*env)->PushLocalFrame(env, FRAME) != 0)
        return failed(env, "PushLocalFrame", name);
    int count = -1;
    jclass class = (*env)->FindClass(env, name);
    jobjectArray nested = class ? (*env)->CallObjectMethod(env, class, get_declared) : NULL;
    if (!nested || (*env)->ExceptionCheck(env)) {
        (*env)->PopLocalFrame(env, NULL);
        return failed(env, "initialize class", name);
    }
    count = 1;
    jsize length = (*env)->GetArrayLength(env, nested);
    for (jsize i = 0; i < length && count > 0; i++) {
        jobject inner = (*env)->GetObjectArrayElement(env, nested, i);
        jstring binary = inner ? (*env)->CallObjectMethod(env, inner, get_name) : NULL;
        char *inner_name = binary ? c_string(env, binary) : NULL;
        if (!inner_name) {
            count = failed(env, "Class#getName", name);
            break;
        }
        for (char *c = inner_name; *c; c++)
            if (*c == '.')
                *c = '/';
        int more = initialize_tree(env, inner_name, get_declared, get_name);
        free(inner_name);
        (*env)->DeleteLocalRef(env, binary);
        (*env)->DeleteLocalRef(env, inner);
        count = more < 0 ? -1 : count + more;
    }
    (*env)->PopLocalFrame(env, NULL);
    return count;
}

int hdfsftpd_initialize_classes(const char *name)
{
    JNIEnv *env = java(name);
    if (!env)
        return -1;
    jclass class_class = (*env)->FindClass(env, "java/lang/Class");
    jmethodID get_declared =
        class_class ? (*env)->GetMethodID(env, class_class, "getDeclaredClasses", "()[Ljava/lang/Class;") : NULL;
    jmethodID get_name = get_declared ? (*env)->GetMethodID(env, class_class, "getName", "()Ljava/lang/String;") : NULL;
    if (!get_name) {
        (*env)->DeleteLocalRef(env, class_class);
        return failed(env, "initialize class", name);
    }
    int count = initialize_tree(env, name, get_declared, get_name);
    (*env)->DeleteLocalRef(env, class_class);
    return count;
}

/*
 * Acting for users (proxy users): the gateway's own Kerberos login from a keytab, and filesystems made as
 * UserGroupInformation.createProxyUser(user, gateway), which libhdfs has no call for. A filesystem is made
 * as FileSystem.newInstance(uri, conf) inside proxyUser.doAs(action): Hadoop's client binds the identity
 * that runs the constructor (DFSClient reads getCurrentUser()) for the filesystem's life. The action is a
 * method handle turned into a PrivilegedExceptionAction (MethodHandleProxies), so no Java class of ours
 * has to be on the class path. The result is a global reference to the FileSystem, exactly what
 * hdfsBuilderConnect returns as an hdfsFS, so every libhdfs call (and hdfsDisconnect) works on it.
 */

#define UGI "org/apache/hadoop/security/UserGroupInformation"
#define UGI_SIG "L" UGI ";"
#define STRING_SIG "Ljava/lang/String;"

/* Throws IllegalStateException(MESSAGE) so that failed() records it like any Java failure. */
static void throw_state(JNIEnv *env, const char *message)
{
    jclass state = (*env)->FindClass(env, "java/lang/IllegalStateException");
    if (state)
        (*env)->ThrowNew(env, state, message);
}

/* UserGroupInformation.loginUserFromKeytabAndReturnUGI(PRINCIPAL, KEYTAB): a login of its own, which
 * leaves the JVM's login user alone. SECURITY: refused when Hadoop's configuration does not turn Kerberos
 * on: the call would then return the OS user, and impersonation would silently become simple
 * authentication. A global reference, or NULL with errno set (and the Java root cause recorded). */
jobject hdfsftpd_keytab_login(const char *principal, const char *keytab)
{
    JNIEnv *env = java_in_frame(principal, FRAME);
    if (!env)
        return NULL;
    jobject global = NULL;
    jclass ugi = (*env)->FindClass(env, UGI);
    jmethodID secure = ugi ? (*env)->GetStaticMethodID(env, ugi, "isSecurityEnabled", "()Z") : NULL;
    jmethodID login = secure ? (*env)->GetStaticMethodID(env, ugi, "loginUserFromKeytabAndReturnUGI",
        "(" STRING_SIG STRING_SIG ")" UGI_SIG) : NULL;
    jstring jprincipal = login ? (*env)->NewStringUTF(env, principal) : NULL;
    jstring jkeytab = jprincipal ? (*env)->NewStringUTF(env, keytab) : NULL;
    if (jkeytab && !(*env)->CallStaticBooleanMethod(env, ugi, secure) && !(*env)->ExceptionCheck(env))
        throw_state(env, "hadoop.security.authentication is not kerberos in the Hadoop configuration "
                         "(core-site.xml in --hadoop-conf-dir): there is nothing to impersonate with");
    jobject user = jkeytab && !(*env)->ExceptionCheck(env)
        ? (*env)->CallStaticObjectMethod(env, ugi, login, jprincipal, jkeytab) : NULL;
    if (!user || (*env)->ExceptionCheck(env))
        failed(env, "UserGroupInformation#loginUserFromKeytabAndReturnUGI", principal);
    else if ((global = (*env)->NewGlobalRef(env, user)) == NULL)
        failed(env, "NewGlobalRef", principal);
    (*env)->PopLocalFrame(env, NULL);
    return global;
}

/* LOGIN.checkTGTAndReloginFromKeytab(): a new ticket from the keytab once the one held is past 80% of its
 * life (Hadoop's rule; at most once a minute, hadoop.kerberos.min.seconds.before.relogin). Connections
 * made as proxies of LOGIN share its Subject and so use the new ticket from their next NameNode connection
 * on. 0, or -1 with errno set (and the Java root cause recorded). */
int hdfsftpd_relogin(jobject login, const char *principal)
{
    JNIEnv *env = java_in_frame(principal, FRAME);
    if (!env)
        return -1;
    jclass ugi = (*env)->FindClass(env, UGI);
    jmethodID check = ugi ? (*env)->GetMethodID(env, ugi, "checkTGTAndReloginFromKeytab", "()V") : NULL;
    if (check)
        (*env)->CallVoidMethod(env, login, check);
    int rc = (*env)->ExceptionCheck(env) || !check
        ? failed(env, "UserGroupInformation#checkTGTAndReloginFromKeytab", principal) : 0;
    (*env)->PopLocalFrame(env, NULL);
    return rc;
}

/* A new Configuration with the COUNT pairs KEYS[i]=VALUES[i] set (as hdfsBuilderConfSetStr does); NULL
 * with an exception pending. */
static jobject configuration(JNIEnv *env, jclass conf_class, const char *const *keys, const char *const *values,
                             int count)
{
    jmethodID init = (*env)->GetMethodID(env, conf_class, "<init>", "()V");
    jmethodID set = init ? (*env)->GetMethodID(env, conf_class, "set", "(" STRING_SIG STRING_SIG ")V") : NULL;
    jobject conf = set ? (*env)->NewObject(env, conf_class, init) : NULL;
    for (int i = 0; conf && i < count; i++) {
        jstring key = (*env)->NewStringUTF(env, keys[i]);
        jstring value = key ? (*env)->NewStringUTF(env, values[i]) : NULL;
        if (value)
            (*env)->CallVoidMethod(env, conf, set, key, value);
        (*env)->DeleteLocalRef(env, key);
        (*env)->DeleteLocalRef(env, value);
        if (!value || (*env)->ExceptionCheck(env))
            return NULL;
    }
    return conf;
}

/* A PrivilegedExceptionAction whose run() returns FileSystem.newInstance(URI, CONF); NULL with an
 * exception pending. MethodHandles.lookup() needs a Java caller, which a JNI call has not: publicLookup
 * reaches the public static method. */
static jobject new_instance_action(JNIEnv *env, jclass uri_class, jobject uri, jclass conf_class, jobject conf)
{
    jclass handles = (*env)->FindClass(env, "java/lang/invoke/MethodHandles");
    jclass lookup_class = handles ? (*env)->FindClass(env, "java/lang/invoke/MethodHandles$Lookup") : NULL;
    jclass type_class = lookup_class ? (*env)->FindClass(env, "java/lang/invoke/MethodType") : NULL;
    jclass class_class = type_class ? (*env)->FindClass(env, "java/lang/Class") : NULL;
    jclass object_class = class_class ? (*env)->FindClass(env, "java/lang/Object") : NULL;
    jclass proxies = object_class ? (*env)->FindClass(env, "java/lang/invoke/MethodHandleProxies") : NULL;
    jclass action_class = proxies ? (*env)->FindClass(env, "java/security/PrivilegedExceptionAction") : NULL;
    if (!action_class)
        return NULL;
    jmethodID public_lookup =
        (*env)->GetStaticMethodID(env, handles, "publicLookup", "()Ljava/lang/invoke/MethodHandles$Lookup;");
    jmethodID find_static = public_lookup ? (*env)->GetMethodID(env, lookup_class, "findStatic",
        "(Ljava/lang/Class;" STRING_SIG "Ljava/lang/invoke/MethodType;)Ljava/lang/invoke/MethodHandle;") : NULL;
    jmethodID method_type = find_static ? (*env)->GetStaticMethodID(env, type_class, "methodType",
        "(Ljava/lang/Class;[Ljava/lang/Class;)Ljava/lang/invoke/MethodType;") : NULL;
    jmethodID insert = method_type ? (*env)->GetStaticMethodID(env, handles, "insertArguments",
        "(Ljava/lang/invoke/MethodHandle;I[Ljava/lang/Object;)Ljava/lang/invoke/MethodHandle;") : NULL;
    jmethodID as_interface = insert ? (*env)->GetStaticMethodID(env, proxies, "asInterfaceInstance",
        "(Ljava/lang/Class;Ljava/lang/invoke/MethodHandle;)Ljava/lang/Object;") : NULL;
    jobjectArray parameters = as_interface ? (*env)->NewObjectArray(env, 2, class_class, NULL) : NULL;
    jobjectArray arguments = parameters ? (*env)->NewObjectArray(env, 2, object_class, NULL) : NULL;
    if (!arguments)
        return NULL;
    (*env)->SetObjectArrayElement(env, parameters, 0, uri_class);
    (*env)->SetObjectArrayElement(env, parameters, 1, conf_class);
    (*env)->SetObjectArrayElement(env, arguments, 0, uri);
    (*env)->SetObjectArrayElement(env, arguments, 1, conf);
    jobject type = (*env)->CallStaticObjectMethod(env, type_class, method_type, J.file_system, parameters);
    jobject lookup = type ? (*env)->CallStaticObjectMethod(env, handles, public_lookup) : NULL;
    jstring name = lookup ? (*env)->NewStringUTF(env, "newInstance") : NULL;
    jobject handle = name ? (*env)->CallObjectMethod(env, lookup, find_static, J.file_system, name, type) : NULL;
    jobject bound = handle ? (*env)->CallStaticObjectMethod(env, handles, insert, handle, (jint)0, arguments) : NULL;
    jobject action = bound ? (*env)->CallStaticObjectMethod(env, proxies, as_interface, action_class, bound) : NULL;
    return (*env)->ExceptionCheck(env) ? NULL : action;
}

/* A new filesystem at URI (NULL: fs.defaultFS) with the COUNT configuration pairs, acting as USER through
 * GATEWAY (createProxyUser), or as GATEWAY itself when USER is NULL. The NameNode judges the impersonation
 * when the filesystem first calls it, not here. A global reference usable as an hdfsFS, or NULL with errno
 * set (and the Java root cause recorded). */
jobject hdfsftpd_proxy_connect(jobject gateway, const char *user, const char *uri, const char *const *keys,
                               const char *const *values, int count)
{
    const char *who = user ? user : "(the gateway)";
    JNIEnv *env = java_in_frame(who, 4 * FRAME);
    if (!env)
        return NULL;
    jobject global = NULL;
    jclass ugi = (*env)->FindClass(env, UGI);
    jclass uri_class = ugi ? (*env)->FindClass(env, "java/net/URI") : NULL;
    jclass conf_class = uri_class ? (*env)->FindClass(env, "org/apache/hadoop/conf/Configuration") : NULL;
    jobject conf = conf_class ? configuration(env, conf_class, keys, values, count) : NULL;
    jobject juri = NULL;
    if (conf && uri) {
        jmethodID create = (*env)->GetStaticMethodID(env, uri_class, "create", "(" STRING_SIG ")Ljava/net/URI;");
        jstring text = create ? (*env)->NewStringUTF(env, uri) : NULL;
        juri = text ? (*env)->CallStaticObjectMethod(env, uri_class, create, text) : NULL;
    } else if (conf) {
        jmethodID default_uri = (*env)->GetStaticMethodID(env, J.file_system, "getDefaultUri",
            "(Lorg/apache/hadoop/conf/Configuration;)Ljava/net/URI;");
        juri = default_uri ? (*env)->CallStaticObjectMethod(env, J.file_system, default_uri, conf) : NULL;
    }
    jobject action = juri && !(*env)->ExceptionCheck(env)
        ? new_instance_action(env, uri_class, juri, conf_class, conf) : NULL;
    jmethodID create_proxy = action ? (*env)->GetStaticMethodID(env, ugi, "createProxyUser",
        "(" STRING_SIG UGI_SIG ")" UGI_SIG) : NULL;
    jmethodID do_as = create_proxy ? (*env)->GetMethodID(env, ugi, "doAs",
        "(Ljava/security/PrivilegedExceptionAction;)Ljava/lang/Object;") : NULL;
    jstring juser = do_as && user ? (*env)->NewStringUTF(env, user) : NULL;
    jobject proxy = juser ? (*env)->CallStaticObjectMethod(env, ugi, create_proxy, juser, gateway)
                          : do_as && !user ? gateway : NULL;
    jobject fs = proxy ? (*env)->CallObjectMethod(env, proxy, do_as, action) : NULL;
    if (!fs || (*env)->ExceptionCheck(env))
        failed(env, "UserGroupInformation#doAs(FileSystem#newInstance)", who);
    else if ((global = (*env)->NewGlobalRef(env, fs)) == NULL)
        failed(env, "NewGlobalRef", who);
    (*env)->PopLocalFrame(env, NULL);
    return global;
}

/* Lets go of a global reference made here (a login). */
void hdfsftpd_release(jobject global)
{
    JNIEnv *env = getJNIEnv();
    if (env)
        (*env)->DeleteGlobalRef(env, global);
}

/* ---- Writes through a reused Java array ----
 * libhdfs's hdfsWrite allocates a Java byte[] of the whole length on every call (with a 1 MiB buffer, a
 * G1 "humongous" object: its own heap region, zeroed, then filled) and copies the data into it.
 * hdfsftpd_write copies into one array per output stream instead, made on the stream's first write and
 * kept until hdfsftpd_write_release, and passes it to the same Java call (FSDataOutputStream#write). */

/* The start of libhdfs 3.3's struct hdfsFile_internal (hdfs.c): the stream's global reference first. */
struct libhdfs_file_start {
    jobject stream;
};

static jmethodID output_stream_write; /* java.io.OutputStream#write(byte[], int, int) */
static pthread_mutex_t write_lock = PTHREAD_MUTEX_INITIALIZER;

static int look_up_write(JNIEnv *env)
{
    pthread_mutex_lock(&write_lock);
    if (!__atomic_load_n(&output_stream_write, __ATOMIC_ACQUIRE)) {
        jclass stream = (*env)->FindClass(env, "java/io/OutputStream");
        jmethodID write = stream ? (*env)->GetMethodID(env, stream, "write", "([BII)V") : NULL;
        if (stream)
            (*env)->DeleteLocalRef(env, stream);
        __atomic_store_n(&output_stream_write, write, __ATOMIC_RELEASE);
    }
    pthread_mutex_unlock(&write_lock);
    return __atomic_load_n(&output_stream_write, __ATOMIC_ACQUIRE) ? 0 : -1;
}

/* Writes LENGTH bytes of DATA to FILE (libhdfs's hdfsFile of an output stream) in pieces of at most CHUNK
 * bytes, each copied into *ARRAY, a global reference to a byte[CHUNK] made here on the first call (*ARRAY
 * NULL). 0 once every byte is handed to the stream, or -1 with errno set (and the Java root cause
 * recorded). As with hdfsWrite, a failure can leave an unknown part written. */
int hdfsftpd_write(void *file, jbyteArray *array, int32_t chunk, const void *data, int32_t length, const char *path)
{
    JNIEnv *env = getJNIEnv();
    if (!env) {
        errno = EINTERNAL;
        return -1;
    }
    if (chunk <= 0 || length < 0) {
        errno = EINVAL;
        return -1;
    }
    if (!__atomic_load_n(&output_stream_write, __ATOMIC_ACQUIRE) && look_up_write(env) != 0)
        return failed(env, "looking up OutputStream#write", path);
    if (!*array) {
        jbyteArray local = (*env)->NewByteArray(env, chunk);
        *array = local ? (*env)->NewGlobalRef(env, local) : NULL;
        if (local)
            (*env)->DeleteLocalRef(env, local);
        if (!*array)
            return failed(env, "hdfsftpd_write: NewByteArray", path);
    }
    jobject stream = ((struct libhdfs_file_start *)file)->stream;
    const jbyte *bytes = data;
    for (int32_t done = 0; done < length;) {
        jint piece = length - done < chunk ? length - done : chunk;
        (*env)->SetByteArrayRegion(env, *array, 0, piece, bytes + done);
        if (!(*env)->ExceptionCheck(env))
            (*env)->CallVoidMethod(env, stream, output_stream_write, *array, 0, piece);
        if ((*env)->ExceptionCheck(env))
            return failed(env, "FSDataOutputStream#write", path);
        done += piece;
    }
    return 0;
}

/* Lets go of the array hdfsftpd_write made (NULL: nothing to do). */
void hdfsftpd_write_release(jbyteArray array)
{
    JNIEnv *env = array ? getJNIEnv() : NULL;
    if (env)
        (*env)->DeleteGlobalRef(env, array);
}
