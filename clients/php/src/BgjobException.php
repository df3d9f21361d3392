<?php

declare(strict_types=1);

namespace Bgjob;

/**
 * An error from bgjobd (its `NNN: text` answer) or on the way to it.
 *
 * getCode() is the answer's code (400, 500, 503, ...), or 0 when the error
 * happened on the client's side (no connection, no answer in time);
 * getText() is the text after the code; getMessage() is the whole line.
 */
class BgjobException extends \RuntimeException
{
    /** Classes of the codes that callers commonly handle on their own. */
    private const BY_CODE = [
        400 => UnknownModule::class,
        403 => Forbidden::class,
        404 => NotFound::class,
        408 => Timeout::class,
        410 => Cancelled::class,
        413 => TooLarge::class,
        500 => ModuleFailed::class,
        503 => Busy::class,
        504 => Timeout::class,
    ];

    private string $text;

    public function __construct(int $code, string $text, ?\Throwable $previous = null)
    {
        $this->text = $text;
        parent::__construct($code > 0 ? sprintf('%03d: %s', $code, $text) : $text, $code, $previous);
    }

    /** The text of the answer after its `NNN:` code. */
    public function getText(): string
    {
        return $this->text;
    }

    /**
     * The exception an answer stands for, or null when it is not an error.
     * An error answer starts with a 4xx or 5xx code and a colon, after
     * leading white space: the test the seed's clients made.
     */
    public static function fromAnswer(string $answer): ?self
    {
        if (!preg_match('/^([45][0-9]{2}):\s?(.*)$/s', ltrim($answer), $m)) {
            return null;
        }
        $code = (int) $m[1];
        $class = self::BY_CODE[$code] ?? self::class;
        return new $class($code, rtrim($m[2]));
    }
}
