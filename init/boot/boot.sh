#!/bin/bash
# shellcheck disable=SC2317  # the steps are called through step()
# Container start (CMD, under tini as PID 1): prepare SSH, Jupyter and the login
# environment from the variables documented in /init/README.md, then exec supervisord.
#
# Runs on every start, `docker restart` included, so every step is idempotent.
# Nothing here touches the network. A failing step is logged and the boot goes on:
# a broken SSH setup must not take Jupyter down with it.
set -uo pipefail

readonly INIT=/init
readonly STATE=/run/llbgen   # per-boot state (the Jupyter token file), recreated every boot
readonly INPUTS=/run/llbgen-inputs   # written by /init/boot/entry.sh (the ENTRYPOINT), removed here
readonly MIN_SECRET_LENGTH=8
readonly SSHD_DROPIN_DIR=/etc/ssh/sshd_config.d
readonly SSHD_PASSWORD_CONF=$SSHD_DROPIN_DIR/00-llbgen-password.conf
readonly HOST_KEYS_OWNER=/etc/ssh/llbgen-host-keys.owner
readonly AUTHORIZED_KEYS=/root/.ssh/authorized_keys
readonly JUPYTER_SETTINGS=/root/.jupyter/lab/user-settings/@jupyterlab/translation-extension/plugin.jupyterlab-settings
# Our inputs: consumed here, kept out of services' and SSH sessions' environments.
readonly INPUT_VARS=(ROOT_PASSWORD ROOT_PASSWORD_FILE JUPYTER_TOKEN JUPYTER_TOKEN_FILE PUBLIC_KEY PUBLIC_KEY_FILE)

log() { printf '[boot] %s\n' "$*"; }
error() { printf '[boot] ERROR: %s\n' "$*" >&2; }

# step FUNC ARGS...: run one boot step; a failure is logged, never fatal.
step() { "$@" || error "$1 failed (exit $?); continuing"; }

# The ENTRYPOINT (/init/boot/entry.sh) moved our inputs out of PID 1's environment into
# root-only files: read them back as shell variables (never exported) and delete the files.
# Without that entry step (an image whose ENTRYPOINT was overridden) the environment still has them.
restore_inputs() {
    local name value
    [[ -d $INPUTS ]] || return 0
    for name in "${INPUT_VARS[@]}"; do
        [[ -f $INPUTS/$name ]] || continue
        IFS= read -r -d '' value < "$INPUTS/$name"   # exact content: read stops only at EOF
        printf -v "$name" '%s' "$value"
    done
    rm -rf "$INPUTS"
}

# secret NAME: sets REPLY to $NAME, or to the content of the file named by $NAME_FILE
# (the file wins), and SECRET_SOURCE to the variable it came from (for messages); removes
# both variables so no service inherits them.
# Returns through REPLY, not $(...), because the unset must happen in this shell.
secret() {
    local name=$1 file_var=${1}_FILE
    local file=${!file_var:-}
    REPLY=${!name:-}
    SECRET_SOURCE=$name
    if [[ -n $file ]]; then
        [[ -n $REPLY ]] && log "both $name and $file_var are set; using $file_var"
        REPLY=""
        SECRET_SOURCE=$file_var
        if [[ -r $file && -f $file ]]; then
            REPLY=$(<"$file")   # builtin read: the secret never appears in a command line
        else
            error "$file_var=$file is not a readable file; ignoring it"
        fi
    fi
    unset "$name" "$file_var"
}

# weakness VALUE: sets REPLY to why VALUE cannot be a password or token (blank, too short,
# more than one line), or to "" when it can. The value itself is never logged.
weakness() {
    local value=$1
    REPLY=""
    if [[ -z ${value//[[:space:]]/} ]]; then
        REPLY="blank (only whitespace)"
    elif [[ $value == *$'\n'* ]]; then
        REPLY="more than one line"
    elif (( ${#value} < MIN_SECRET_LENGTH )); then
        REPLY="too short (${#value} characters, at least $MIN_SECRET_LENGTH)"
    fi
}

prepare_dirs() {
    rm -rf "$STATE"
    install -d -m 0700 "$STATE"
    mkdir -p /run/sshd /var/log/supervisor /root/tensorboard-logs
}

# The /etc hooks whose content lives in /init/etc. Installed at boot as well as by the
# image build, so an image whose build skipped them still works.
install_system_hooks() {
    mkdir -p "$SSHD_DROPIN_DIR" /etc/profile.d
    install -m 0644 "$INIT/etc/ssh/sshd_config.d/llbgen.conf" "$SSHD_DROPIN_DIR/llbgen.conf"
    install -m 0644 "$INIT/etc/profile.d/llbgen.sh" /etc/profile.d/llbgen.sh
    # sshd_config from distributions older than OpenSSH 8.2 packaging has no Include line.
    if ! grep -qiE '^[[:space:]]*Include[[:space:]]+/etc/ssh/sshd_config\.d/\*\.conf' /etc/ssh/sshd_config; then
        sed -i '1i Include /etc/ssh/sshd_config.d/*.conf' /etc/ssh/sshd_config
    fi
    # Interactive non-login bash (Jupyter terminal, `docker exec -it bash`) reads only bash.bashrc.
    local hook='[ -r /etc/profile.d/llbgen.sh ] && . /etc/profile.d/llbgen.sh  # llbgen'
    touch /etc/bash.bashrc
    grep -qxF "$hook" /etc/bash.bashrc || printf '%s\n' "$hook" >> /etc/bash.bashrc
    # sshd accumulates AcceptEnv lines, so a drop-in cannot withdraw the distribution's
    # "AcceptEnv LANG LC_*": comment it out (see llbgen.conf).
    sed -i -E 's/^([[:space:]]*AcceptEnv[[:space:]].*)$/# llbgen: see sshd_config.d\/llbgen.conf: \1/' /etc/ssh/sshd_config
    # The distribution's MOTD (pam_motd) would print before our banner; /init/bin/login-banner replaces it.
    if [[ -f /etc/pam.d/sshd ]]; then
        sed -i -E 's/^([[:space:]]*session[[:space:]]+optional[[:space:]]+pam_motd\.so.*)$/# llbgen: replaced by \/init\/bin\/login-banner: \1/' /etc/pam.d/sshd
    fi
    # supervisord warns when an [include] pattern matches nothing; this file also says what the directory is for.
    mkdir -p /etc/supervisor/conf.d
    if ! compgen -G '/etc/supervisor/conf.d/*.conf' >/dev/null; then
        printf '%s\n' "; Extra programs for /init/supervisor/supervisord.conf: put [program:NAME] sections in" \
            "; *.conf files in this directory (derived images, or docker run -v x.conf:/etc/supervisor/conf.d/x.conf:ro)." \
            > /etc/supervisor/conf.d/00-llbgen-readme.conf
    fi
}

# Something that names this container and changes when the image is saved and run again:
# the source of the /etc/hostname bind mount (/var/lib/docker/containers/<id>/hostname,
# a pod directory under Kubernetes), else the hostname.
container_identity() {
    local id
    id=$(awk '$5 == "/etc/hostname" { print $4; exit }' /proc/self/mountinfo 2>/dev/null)
    printf '%s' "${id:-$(cat /proc/sys/kernel/hostname 2>/dev/null)}"
}

# Host keys are never in the image: made at first boot, kept across restarts, and made
# anew when this filesystem was saved from another container (docker commit,
# "save instance as image") so two containers never share them.
ssh_host_keys() {
    local identity owner=""
    identity=$(container_identity)
    [[ -r $HOST_KEYS_OWNER ]] && owner=$(<"$HOST_KEYS_OWNER")
    if compgen -G '/etc/ssh/ssh_host_*' >/dev/null && [[ -n $identity && $owner != "$identity" ]]; then
        log "SSH host keys were not made for this container; making new ones"
        rm -f /etc/ssh/ssh_host_*
    fi
    ssh-keygen -A >/dev/null || return
    [[ -n $identity ]] && printf '%s\n' "$identity" > "$HOST_KEYS_OWNER"
    local pub
    for pub in /etc/ssh/ssh_host_*_key.pub; do
        log "SSH host key: $(ssh-keygen -l -f "$pub")"
    done
}

# add_authorized_keys SOURCE TEXT: append each valid key line not already present.
# A rejected line is named by its number and the reason, never shown: it may be a secret
# (a private key pasted by mistake), and docker logs outlive the container.
add_authorized_keys() {
    local source=$1 text=$2 line number=0 private_from=0 added=0
    install -d -m 0700 /root/.ssh
    touch "$AUTHORIZED_KEYS"
    while IFS= read -r line || [[ -n $line ]]; do
        number=$((number + 1))
        line=${line%$'\r'}
        # A private key: one message for the whole block, from BEGIN to END.
        if (( private_from )); then
            if [[ $line =~ ^[[:space:]]*-----END\ .*PRIVATE\ KEY----- ]]; then
                error "$source lines $private_from-$number: a private key, skipped (not logged); give the public key (the .pub file) instead, and treat this private key as exposed"
                private_from=0
            fi
            continue
        fi
        if [[ $line =~ ^[[:space:]]*-----BEGIN\ .*PRIVATE\ KEY----- ]]; then
            private_from=$number
            continue
        fi
        [[ -z ${line//[[:space:]]/} || $line == \#* ]] && continue
        if ! ssh-keygen -l -f /dev/stdin <<<"$line" >/dev/null 2>&1; then
            error "$source line $number: not an SSH public key (expected 'TYPE BASE64 [COMMENT]', as in a .pub file), skipped (not logged)"
            continue
        fi
        grep -qxF -- "$line" "$AUTHORIZED_KEYS" && continue
        printf '%s\n' "$line" >> "$AUTHORIZED_KEYS"
        added=$((added + 1))
    done <<<"$text"
    if (( private_from )); then
        error "$source lines $private_from-$number: the start of a private key, skipped (not logged); give the public key (the .pub file) instead, and treat this private key as exposed"
    fi
    chmod 0600 "$AUTHORIZED_KEYS"
    chown -R root:root /root/.ssh
    log "$source: $added new key(s) in $AUTHORIZED_KEYS"
}

authorized_keys() {
    local source=$1 text=$2 line added=0
    install -d -m 0700 /root/.ssh
    touch "$AUTHORIZED_KEYS"
    while IFS= read -r line || [[ -n $line ]]; do
        line=${line%$'\r'}
        [[ -z ${line//[[:space:]]/} || $line == \#* ]] && continue
        if ! ssh-keygen -l -f /dev/stdin <<<"$line" >/dev/null 2>&1; then
            error "$source: not an SSH public key, skipped: ${line:0:40}..."
            continue
        fi
        grep -qxF -- "$line" "$AUTHORIZED_KEYS" && continue
        printf '%s\n' "$line" >> "$AUTHORIZED_KEYS"
        added=$((added + 1))
    done <<<"$text"
    chmod 0600 "$AUTHORIZED_KEYS"
    chown -R root:root /root/.ssh
    log "$source: $added new key(s) in $AUTHORIZED_KEYS"
}

authorized_keys() {
    local key=${PUBLIC_KEY:-} file=${PUBLIC_KEY_FILE:-}
    [[ -n $key ]] && add_authorized_keys PUBLIC_KEY "$key"
    if [[ -n $file ]]; then
        if [[ -r $file && -f $file ]]; then
            add_authorized_keys PUBLIC_KEY_FILE "$(<"$file")"
        else
            error "PUBLIC_KEY_FILE=$file is not a readable file; ignoring it"
        fi
    fi
    return 0
}

# root_password PASSWORD SOURCE: with a password, set it and allow password login for root;
# without one, or with a weak one, lock root's password and leave sshd at keys only (llbgen.conf).
root_password() {
    local password=$1 source=$2 refused=""
    if [[ -n $password ]]; then
        weakness "$password"
        refused=$REPLY
    fi
    if [[ -n $password && -z $refused ]]; then
        printf 'root:%s\n' "$password" | chpasswd || return
        printf '%s\n' "# Written by /init/boot/boot.sh because ROOT_PASSWORD was given; removed at boot when it is not." \
            "PermitRootLogin yes" "PasswordAuthentication yes" > "$SSHD_PASSWORD_CONF"
        log "root password set from $source; SSH password login is on"
    else
        rm -f "$SSHD_PASSWORD_CONF"
        usermod -p '*' root || return
        if [[ -n $refused ]]; then
            error "$source refused: $refused; root's password stays locked and SSH accepts keys only"
        else
            log "no ROOT_PASSWORD: root password locked; SSH accepts keys only"
        fi
        if [[ ! -s $AUTHORIZED_KEYS ]]; then
            log "no SSH key either: set PUBLIC_KEY or PUBLIC_KEY_FILE (or ROOT_PASSWORD) to log in over SSH"
        fi
    fi
}

# jupyter_token TOKEN SOURCE: the token Jupyter will demand, passed through a root-only file
# (jupyter_server reads JUPYTER_TOKEN_FILE), never through the environment or argv.
# A weak token is refused for a random one: Jupyter never runs without authentication.
jupyter_token() {
    local token=$1 source=$2
    if [[ -n $token ]]; then
        weakness "$token"
        if [[ -n $REPLY ]]; then
            error "$source refused: $REPLY; using a random token instead"
            token=""
        fi
    fi
    if [[ -z $token ]]; then
        token=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
        log "JupyterLab: http://<host>:8888/jupyter/lab?token=$token (random token, new at every start; set JUPYTER_TOKEN or JUPYTER_TOKEN_FILE to choose one)"
    else
        log "Jupyter token: the one given in JUPYTER_TOKEN or JUPYTER_TOKEN_FILE (not printed)"
    fi
    (umask 077 && printf '%s' "$token" > "$STATE/jupyter-token")
}

# The JupyterLab UI in Chinese by default; a user's own choice is kept.
jupyter_settings() {
    [[ -e $JUPYTER_SETTINGS ]] && return 0
    mkdir -p "$(dirname "$JUPYTER_SETTINGS")"
    printf '{"locale": "zh_CN"}\n' > "$JUPYTER_SETTINGS"
}

# sshd gives sessions a fresh environment; pam_env reads /etc/environment, so write the
# container's (PATH, LANG, TZ, CUDA and NVIDIA variables, -e ones) there, minus our inputs.
session_environment() {
    local begin='# BEGIN llbgen: the container environment, rewritten at every boot by /init/boot/boot.sh'
    local end='# END llbgen' kv name tmp
    tmp=$(mktemp /etc/environment.XXXXXX) || return
    [[ -f /etc/environment ]] && awk -v b="$begin" -v e="$end" \
        '$0 == b { skip = 1 } !skip { print } $0 == e { skip = 0 }' /etc/environment > "$tmp"
    {
        printf '%s\n' "$begin"
        while IFS= read -r -d '' kv; do
            name=${kv%%=*}
            [[ $name =~ ^[A-Za-z_][A-Za-z0-9_]*$ && $kv != *$'\n'* ]] || continue
            case " ${INPUT_VARS[*]} HOME HOSTNAME PWD OLDPWD SHLVL TERM _ " in *" $name "*) continue ;; esac
            printf '%s\n' "$kv"
        done < <(env -0)
        printf '%s\n' "$end"
    } >> "$tmp"
    chmod 0644 "$tmp" && mv -f "$tmp" /etc/environment
}

check_sshd_config() {
    local out
    out=$(/usr/sbin/sshd -t 2>&1) || { error "sshd configuration: $out"; return 1; }
}

main() {
    local image
    image=$(sed -n 's/^IMAGE=//p' "$INIT/image-info.env" 2>/dev/null)
    log "starting${image:+ $image}"
    restore_inputs
    secret ROOT_PASSWORD; local root_password=$REPLY root_password_source=$SECRET_SOURCE
    secret JUPYTER_TOKEN; local jupyter_token=$REPLY jupyter_token_source=$SECRET_SOURCE
    step prepare_dirs
    step install_system_hooks
    step ssh_host_keys
    step authorized_keys
    unset PUBLIC_KEY PUBLIC_KEY_FILE
    step root_password "$root_password" "$root_password_source"
    step jupyter_token "$jupyter_token" "$jupyter_token_source"
    unset root_password jupyter_token
    step jupyter_settings
    step session_environment
    step check_sshd_config
    log "starting supervisord (sshd, jupyter, tensorboard)"
    exec /usr/bin/supervisord --nodaemon --configuration "$INIT/supervisor/supervisord.conf"
}

# Sourced (the tests call single steps): define the functions only.
[[ ${BASH_SOURCE[0]} != "$0" ]] || main "$@"
