<?php

declare(strict_types=1);

// Composer's autoloader when the package was installed with Composer,
// otherwise the same PSR-4 mapping by hand, so the tests run from a checkout.
if (is_file(__DIR__ . '/../vendor/autoload.php')) {
    require __DIR__ . '/../vendor/autoload.php';
} else {
    spl_autoload_register(function (string $class): void {
        foreach (['Bgjob\\Tests\\' => '/', 'Bgjob\\' => '/../src/'] as $prefix => $dir) {
            if (str_starts_with($class, $prefix)) {
                $file = __DIR__ . $dir . str_replace('\\', '/', substr($class, strlen($prefix))) . '.php';
                if (is_file($file)) {
                    require $file;
                }
                return;
            }
        }
    });
}
