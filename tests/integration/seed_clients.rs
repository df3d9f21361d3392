//! Real clients: the seed's PHP examples, unchanged, and nc.

use std::process::Command;

use crate::util::{wait_for, Setup};

/// The seed's two PHP examples, as published, with only the port changed.
const SEED_PHP: &str = r#"<?php
$port = (int)$argv[1];
$data = 'something';
session_id('sess' . $argv[2]);

$fp = @stream_socket_client('udp://127.0.0.1:'.$port, $errno, $errstr);
if($fp) {
  @socket_set_timeout($fp, 0, 50);
  if($data !== null) {
    @fwrite($fp, 'registersession:'.session_id());
  }
  @fclose($fp);
}

function CompileLESS($code) {
  global $port;
  $fp = @fsockopen('tcp://127.0.0.1:'.$port);
  if($fp) {
    fputs($fp, 'less:'.utf8_encode($code));
    $result = '';
    while(!feof($fp)) {
      $result .= @fgets($fp, 1024);
      break;
    }
    if(!preg_match('/^[45][0-9]{2}\:/Us', ltrim($result))) {
      return utf8_decode($result);
    }
    return null;
  }
  return null;
}

echo CompileLESS("@color: red;\n.a { color: @color; }"), "|";
var_dump(CompileLESS("broken"));
"#;

#[test]
fn the_seed_php_examples_work_unchanged() {
    let d = Setup::new().start();
    let out = d.dir.path().join("sessions");
    d.add_module(
        "registersession",
        &format!("#!/bin/sh\ncat >> {}\n", out.display()),
    );
    // A tiny LESS stand-in: resolves `@color` and fails on "broken" the seed's way.
    d.add_module(
        "less",
        "#!/bin/sh\ninput=$(cat)\ncase \"$input\" in broken*) printf '500: LESS parse error'; exit 1;; esac\nprintf '%s' \"$input\" | sed -n 's/@color/red/; /^\\.a/p'\n",
    );
    let script = d.dir.path().join("seed.php");
    std::fs::write(&script, SEED_PHP).unwrap();
    let run = Command::new("php")
        .arg(&script)
        .arg(d.addr.port().to_string())
        .arg("42")
        .output();
    let run = run.expect("php is installed (.ci/run installs php-cli)");
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "{stdout} {}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert_eq!(stdout, ".a { color: red; }|NULL\n");
    wait_for("the UDP session", || {
        std::fs::read_to_string(&out).is_ok_and(|s| s == "sess42")
    });
}

#[test]
fn the_readme_nc_one_liner_answers_test() {
    let d = Setup::new()
        .module("test", "#!/bin/sh\nprintf Test\n")
        .start();
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "echo -n test: | nc -q1 127.0.0.1 {}",
            d.addr.port()
        ))
        .output()
        .expect("nc is installed (.ci/run installs netcat-openbsd)");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "Test");
}
